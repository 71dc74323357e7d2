/**
 * Version operations on the embedded stack (SQLite queue, sqlite-vec), and on the SQLite queue with
 * VECTOR_STORE=qdrant against the Qdrant contract double: a collection written by the
 * random-weight MiniLM, re-embedded into version 2 by a server restarted with the real MiniLM (as in
 * reembed.test.ts, smaller). Listing the versions, refusing to delete the active one or the one
 * being built, the cutover check refused because this one-model server cannot embed for version 1,
 * and, after a plain cutover, deleting version 1: its points are gone, search by the name is
 * untouched, rollback has nowhere to go.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import { waitForJobDone } from "../helpers/fixtures.js";
import { realModelDir, tempDir, testModelDir } from "../helpers/paths.js";
import { startQdrantContractServer } from "../helpers/qdrant-contract-server.js";
import {
  getJson,
  postJson,
  type ServerProcess,
  startServerProcess,
  waitUntilReady,
} from "../helpers/server-process.js";

const STORED = 60;
const TOPICS = ["aspirin dosage", "tax returns", "river fishing", "jazz piano", "tomato soil", "bike brakes"];

const chunk = (i: number) => ({
  id: `s${i}`,
  text: `s${i}: a note on ${TOPICS[i % TOPICS.length]}, number ${i}, with details only this note has`,
  document_id: `doc-${i % 6}`,
});

interface ErrorAnswer {
  error: { code: string; message: string; details: Record<string, unknown> };
}

interface VersionsAnswer {
  active_version: string;
  versions: Array<{
    version: number;
    name: string;
    active: boolean;
    next: boolean;
    points: number;
    model_served: boolean;
    reembed_job_id: string | null;
    pending_chunks: number;
    binding: { model: string; fingerprint: string } | null;
  }>;
}

async function started(env: Record<string, string>): Promise<ServerProcess> {
  const server = await startServerProcess(env);
  await waitUntilReady(server.url, 300_000);
  return server;
}

async function remove(url: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url, { method: "DELETE" });
  return { status: response.status, body: await response.json() };
}

/** Points the file holds under a collection's own name (aliases are not followed). */
function pointsOf(dataDir: string, collection: string): number {
  const db = new Database(join(dataDir, "rag-embed.sqlite"), { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare("SELECT COUNT(*) AS n FROM vs_points WHERE collection = ?").get(collection);
    return (row as { n: number }).n;
  } finally {
    db.close();
  }
}

interface Backing {
  env: Record<string, string>;
  /** Points a version holds, read under its own name in the store (aliases not followed). */
  pointsOf(version: string): number;
  close(): Promise<void>;
}

const stacks: Array<{ name: string; backing: () => Promise<Backing> }> = [
  {
    name: "embedded stack",
    backing: async () => {
      const dataDir = tempDir("version-ops");
      return { env: { DATA_DIR: dataDir }, pointsOf: (v) => pointsOf(dataDir, v), close: async () => {} };
    },
  },
  {
    name: "SQLite queue, Qdrant (contract double)",
    backing: async () => {
      const qdrant = await startQdrantContractServer();
      return {
        env: { DATA_DIR: tempDir("version-ops-qdrant"), VECTOR_STORE: "qdrant", QDRANT_URL: qdrant.url },
        // Version 1 of `docs` is the Qdrant collection `docs__v1`, behind the alias `docs`.
        pointsOf: (v) => qdrant.collection(v === "docs" ? "docs__v1" : v)?.points.size ?? 0,
        close: async () => {
          const invalid = qdrant.requests.filter((r) => !r.valid);
          await qdrant.close();
          assert.deepEqual(invalid, [], "every request validates against Qdrant's spec");
        },
      };
    },
  },
];

for (const stack of stacks)
  describe(`version operations: ${stack.name}`, () => {
    const cleanups: Array<() => Promise<void>> = [];
    after(async () => {
      for (const cleanup of cleanups.reverse()) await cleanup();
    });

    it("lists versions, refuses deleting the active or building one, refuses a check it cannot embed for, deletes the old version after a cutover", {
      timeout: 900_000,
    }, async () => {
      const backing = await stack.backing();
      cleanups.push(backing.close);
      const old = await started({ ...backing.env, EMBEDDING_MODEL: testModelDir() });
      cleanups.push(async () => void (await old.stop("SIGKILL").catch(() => null)));
      const stored = Array.from({ length: STORED }, (_, i) => chunk(i));
      const sent = await postJson<{ job_id: string }>(`${old.url}/v1/collections/docs/chunks`, {
        chunks: stored,
      });
      assert.equal(sent.status, 202);
      assert.equal((await waitForJobDone(old.url, sent.body.job_id)).counts.stored, STORED);
      const oldModel = await getJson<{ fingerprint: string }>(`${old.url}/model-info`);
      await old.stop("SIGTERM");

      // The new model's server embeds at most 10 chunks a second: the re-embed stays pending a while.
      const server = await started({
        ...backing.env,
        EMBEDDING_MODEL: realModelDir(),
        EMBEDDING_MAX_RATE: "10",
      });
      cleanups.push(async () => void (await server.stop("SIGKILL").catch(() => null)));
      const base = `${server.url}/v1/collections/docs`;
      const reembed = await postJson<{ job_id: string }>(`${base}/reembed`, {});
      assert.equal(reembed.status, 202, JSON.stringify(reembed.body));

      const building = await remove(`${base}/versions/2`);
      assert.equal(building.status, 409, JSON.stringify(building.body));
      const buildingError = (building.body as ErrorAnswer).error;
      assert.equal(buildingError.code, "reembed_pending");
      assert.equal(buildingError.details.job_id, reembed.body.job_id);
      const active = await remove(`${base}/versions/1`);
      assert.equal(active.status, 409);
      assert.equal((active.body as ErrorAnswer).error.code, "version_active");
      const unknown = await remove(`${base}/versions/7`);
      assert.equal(unknown.status, 404);
      assert.equal((unknown.body as ErrorAnswer).error.code, "version_not_found");

      const during = await getJson<VersionsAnswer>(`${base}/versions`);
      assert.equal(during.status, 200);
      assert.equal(during.body.active_version, "docs");
      const newModel = await getJson<{ fingerprint: string }>(`${server.url}/model-info`);
      assert.deepEqual(
        during.body.versions.map((v) => [
          v.version,
          v.name,
          v.active,
          v.next,
          v.binding?.fingerprint,
          v.model_served,
        ]),
        [
          [1, "docs", true, false, oldModel.body.fingerprint, false],
          [2, "docs__v2", false, true, newModel.body.fingerprint, true],
        ],
      );
      assert.equal(during.body.versions[0]?.points, STORED);
      assert.equal(during.body.versions[1]?.reembed_job_id, reembed.body.job_id);

      const done = await waitForJobDone(server.url, reembed.body.job_id, 600_000);
      assert.equal(done.counts.stored, STORED);

      // The check embeds each query with each version's model: this server has only the new one.
      const checked = await postJson<ErrorAnswer>(`${base}/cutover`, {
        check: { queries: ["aspirin dosage", "jazz piano"], min_overlap: 0 },
      });
      assert.equal(checked.status, 409, JSON.stringify(checked.body));
      assert.equal(checked.body.error.code, "model_not_served");
      assert.equal(checked.body.error.details.version, "docs");
      assert.equal(checked.body.error.details.fingerprint, oldModel.body.fingerprint);
      const oldBinding = during.body.versions[0]?.binding;
      assert.ok(
        oldBinding && checked.body.error.message.includes(oldBinding.model),
        checked.body.error.message,
      );
      assert.equal(checked.body.error.details.model, oldBinding.model);
      const unchanged = await getJson<{ active_version: string }>(base);
      assert.equal(unchanged.body.active_version, "docs", "a refused check changes nothing");

      const cutover = await postJson<{ active_version: string }>(`${base}/cutover`, {});
      assert.equal(cutover.status, 200, JSON.stringify(cutover.body));
      assert.equal(cutover.body.active_version, "docs__v2");
      const before = await postJson<{ hits: Array<{ id: string }> }>(`${base}/search`, {
        query: "river fishing",
        top_k: 5,
      });
      assert.equal(before.status, 200);

      const deleted = await remove(`${base}/versions/1`);
      assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
      const { binding, ...answer } = deleted.body as { binding: { fingerprint: string } };
      assert.deepEqual(answer, {
        collection: "docs",
        version: 1,
        name: "docs",
        deleted_points: STORED,
        active_version: "docs__v2",
      });
      assert.equal(binding.fingerprint, oldModel.body.fingerprint);
      assert.equal(backing.pointsOf("docs"), 0, "version 1's points are gone from the store");
      assert.equal(backing.pointsOf("docs__v2"), STORED);

      // Search by the name is unaffected: same answers, every chunk once.
      const afterDelete = await postJson<{ hits: Array<{ id: string }> }>(`${base}/search`, {
        query: "river fishing",
        top_k: 5,
      });
      assert.deepEqual(
        afterDelete.body.hits.map((h) => h.id),
        before.body.hits.map((h) => h.id),
      );
      const all = await postJson<{ hits: Array<{ id: string }> }>(`${base}/search`, {
        query: "a note",
        top_k: 1000,
      });
      assert.deepEqual(all.body.hits.map((h) => h.id).sort(), stored.map((c) => c.id).sort());
      const rollback = await postJson<ErrorAnswer>(`${base}/rollback`, {});
      assert.equal(rollback.status, 409);
      assert.equal(rollback.body.error.code, "no_version");
      const remaining = await getJson<VersionsAnswer>(`${base}/versions`);
      assert.deepEqual(
        remaining.body.versions.map((v) => [v.name, v.active, v.points]),
        [["docs__v2", true, STORED]],
      );
      const info = await getJson<{ active_version: string; points: number }>(base);
      assert.deepEqual([info.body.active_version, info.body.points], ["docs__v2", STORED]);
    });
  });
