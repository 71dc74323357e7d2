/**
 * Several models in one server (EMBEDDING_MODELS) and blue/green re-embedding between them, on the
 * embedded stack and on the Redis queue: /v1/models lists both, /v1/embeddings routes by model, a
 * collection written by the random-weight MiniLM refuses the real one (409, nothing queued), a
 * re-embed into the real model runs while new chunks arrive (written to both versions), the cutover
 * makes search answer from the new version with every chunk exactly once, and the rollback brings
 * back the old answers.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { RagEmbedClient } from "../../src/client/index.js";
import { waitForJobDone } from "../helpers/fixtures.js";
import { realModelDir, tempDir, testModelDir } from "../helpers/paths.js";
import { startQdrantContractServer } from "../helpers/qdrant-contract-server.js";
import { RedisTestServer } from "../helpers/redis-server.js";
import {
  getJson,
  postJson,
  type ServerProcess,
  startServerProcess,
  waitFor,
  waitUntilReady,
} from "../helpers/server-process.js";
import { qdrantRows, type VersionRows, versionRows } from "../helpers/version-rows.js";

const TOPICS = ["aspirin dosage", "tax returns", "river fishing", "jazz piano", "tomato soil", "bike brakes"];
const MODELS = JSON.stringify([
  { name: "random-minilm", model: testModelDir() },
  { name: "minilm", model: realModelDir() },
]);

const chunk = (id: string, i: number) => ({
  id,
  text: `${id}: a note on ${TOPICS[i % TOPICS.length]}, number ${i}, with details only this note has`,
});

interface Hit {
  id: string;
}

async function search(url: string, query: string, topK: number, collection = "docs"): Promise<string[]> {
  const { status, body } = await postJson<{ hits: Hit[] }>(`${url}/v1/collections/${collection}/search`, {
    query,
    top_k: topK,
  });
  assert.equal(status, 200, JSON.stringify(body));
  return body.hits.map((h) => h.id);
}

async function answers(url: string): Promise<string[][]> {
  const out: string[][] = [];
  for (const topic of TOPICS) out.push(await search(url, topic, 10));
  return out;
}

async function ingestAll(url: string, chunks: unknown[], size: number): Promise<string[]> {
  const jobs: string[] = [];
  for (let start = 0; start < chunks.length; start += size) {
    const sent = await postJson<{ job_id: string }>(`${url}/v1/collections/docs/chunks`, {
      chunks: chunks.slice(start, start + size),
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    jobs.push(sent.body.job_id);
  }
  return jobs;
}

async function points(url: string, collection: string): Promise<number> {
  const { status, body } = await getJson<{ points: number }>(`${url}/v1/collections/${collection}`);
  return status === 200 ? body.points : -1;
}

interface Backing {
  env: Record<string, string>;
  /** What version `docs`, `docs__v2`, ... holds in the store. */
  rows(version: string): VersionRows;
  close(): Promise<void>;
}

const stacks: Array<{
  name: string;
  stored: number;
  arriving: number;
  backing: (label: string) => Promise<Backing>;
}> = [
  {
    name: "embedded (SQLite queue, sqlite-vec)",
    stored: 1000,
    arriving: 200,
    backing: async (label) => {
      const dataDir = tempDir(label);
      return { env: { DATA_DIR: dataDir }, rows: (v) => versionRows(dataDir, v), close: async () => {} };
    },
  },
  {
    name: "Redis queue (BullMQ), sqlite-vec",
    stored: 200,
    arriving: 40,
    backing: async (label) => {
      const redis = await RedisTestServer.start();
      const dataDir = tempDir(label);
      return {
        env: { DATA_DIR: dataDir, QUEUE_URL: redis.url },
        rows: (v) => versionRows(dataDir, v),
        close: () => redis.stop(),
      };
    },
  },
  {
    name: "SQLite queue, Qdrant (contract double)",
    stored: 200,
    arriving: 40,
    backing: async (label) => {
      const qdrant = await startQdrantContractServer();
      return {
        env: { DATA_DIR: tempDir(label), VECTOR_STORE: "qdrant", QDRANT_URL: qdrant.url },
        rows: (v) => qdrantRows(qdrant, v),
        close: async () => {
          const invalid = qdrant.requests.filter((r) => !r.valid);
          await qdrant.close();
          assert.deepEqual(invalid, [], "every request the server sent validates against Qdrant's spec");
        },
      };
    },
  },
];

for (const stack of stacks) {
  describe(`two models in one server: ${stack.name}`, () => {
    const cleanups: Array<() => Promise<void>> = [];
    after(async () => {
      for (const cleanup of cleanups.reverse()) await cleanup();
    });

    it("routes by model, re-embeds while chunks arrive (both versions), cuts over and rolls back", {
      timeout: 900_000,
    }, async () => {
      const backing = await stack.backing("multi-model");
      cleanups.push(backing.close);
      const server: ServerProcess = await startServerProcess({
        ...backing.env,
        EMBEDDING_MODELS: MODELS,
        EMBEDDING_THREADS: "1",
      });
      cleanups.push(async () => void (await server.stop("SIGKILL").catch(() => null)));
      await waitUntilReady(server.url, 300_000);
      const { url } = server;

      // Both models listed; the default (first) answers /model-info.
      const listed = await getJson<{ data: Array<{ id: string }> }>(`${url}/v1/models`);
      assert.deepEqual(
        listed.body.data.map((m) => m.id),
        ["random-minilm", "minilm"],
      );
      const info = await getJson<{ model_name: string; fingerprint: string }>(`${url}/model-info`);
      assert.equal(info.body.model_name, "random-minilm");
      // /v1/embeddings routes by model: two models, two vectors for one text.
      const embed = (model: string) =>
        postJson<{ data: Array<{ embedding: number[] }>; model: string; error?: { code: string } }>(
          `${url}/v1/embeddings`,
          { model, input: "jazz piano" },
        );
      const [random, real, unknown] = await Promise.all([
        embed("random-minilm"),
        embed("minilm"),
        embed("nomic-embed"),
      ]);
      assert.equal(random.body.model, "random-minilm");
      assert.equal(real.body.model, "minilm");
      assert.notDeepEqual(random.body.data[0]?.embedding, real.body.data[0]?.embedding);
      assert.equal(unknown.status, 404);
      assert.equal(unknown.body.error?.code, "model_not_found");

      // A collection written by the default model.
      const stored = Array.from({ length: stack.stored }, (_, i) => chunk(`s${i}`, i));
      for (const job of await ingestAll(url, stored, 250)) await waitForJobDone(url, job, 600_000);
      assert.equal(await points(url, "docs"), stack.stored);
      const binding = await getJson<{ binding: { fingerprint: string }; model_matches: boolean }>(
        `${url}/v1/collections/docs`,
      );
      assert.equal(binding.body.binding.fingerprint, info.body.fingerprint);

      // Ingest naming the other model: 409 naming both, and nothing queued.
      const jobsBefore = await getJson<{ jobs: unknown[] }>(`${url}/v1/jobs?collection=docs&limit=200`);
      const mismatch = await postJson<{
        error: {
          code: string;
          details: { bound: { fingerprint: string }; current: { fingerprint: string } };
        };
      }>(`${url}/v1/collections/docs/chunks`, { model: "minilm", chunks: [chunk("x", 0)] });
      assert.equal(mismatch.status, 409);
      assert.equal(mismatch.body.error.code, "model_mismatch");
      // Both are MiniLM by name: the weights (and so the fingerprints) tell them apart.
      assert.equal(mismatch.body.error.details.bound.fingerprint, info.body.fingerprint);
      assert.notEqual(mismatch.body.error.details.current.fingerprint, info.body.fingerprint);
      const jobsAfter = await getJson<{ jobs: unknown[] }>(`${url}/v1/jobs?collection=docs&limit=200`);
      assert.equal(jobsAfter.body.jobs.length, jobsBefore.body.jobs.length);

      // A new collection named with the second model is bound to it from its first chunk.
      const other = await postJson<{ job_id: string }>(`${url}/v1/collections/other/chunks`, {
        model: "minilm",
        chunks: [chunk("o1", 1)],
      });
      assert.equal(other.status, 202, JSON.stringify(other.body));
      await waitForJobDone(url, other.body.job_id);
      const otherInfo = await getJson<{ binding: { model: string }; model_matches: boolean }>(
        `${url}/v1/collections/other`,
      );
      assert.match(otherInfo.body.binding.model, /all-MiniLM-L6-v2$/);
      assert.equal(otherInfo.body.model_matches, true);

      // Re-embed with the second model while new chunks arrive.
      const reembed = await postJson<{ job_id: string; count: number; to_version: string }>(
        `${url}/v1/collections/docs/reembed`,
        { model: "minilm" },
      );
      assert.equal(reembed.status, 202, JSON.stringify(reembed.body));
      assert.equal(reembed.body.count, stack.stored);
      assert.equal(reembed.body.to_version, "docs__v2");
      const arriving = Array.from({ length: stack.arriving }, (_, i) => chunk(`n${i}`, i));
      const liveJobs = await ingestAll(url, arriving, 50);
      const all = [...stored, ...arriving].map((c) => c.id).sort();
      for (const job of [reembed.body.job_id, ...liveJobs]) {
        const done = await waitForJobDone(url, job, 600_000);
        assert.equal(done.counts.dead, 0, JSON.stringify(done.counts));
      }
      // The new chunks reach both versions: each embedded by its version's model.
      await waitFor(async () => ((await points(url, "docs__v2")) === all.length ? true : undefined), {
        what: "every chunk in version 2",
        timeoutMs: 300_000,
      });
      assert.equal(await points(url, "docs"), all.length);
      const before = await answers(url);
      assert.deepEqual((await search(url, "a note", 5000, "docs__v2")).sort(), all);

      // A cutover that must keep the answers: random weights against real ones overlap little, so
      // it is refused and the name stays where it was.
      const checked = await postJson<{ error: { code: string; details: { mean_overlap: number } } }>(
        `${url}/v1/collections/docs/cutover`,
        { check: { queries: TOPICS, top_k: 10, min_overlap: 0.9 } },
      );
      assert.equal(checked.status, 409, JSON.stringify(checked.body));
      assert.equal(checked.body.error.code, "cutover_check_failed");
      assert.ok(checked.body.error.details.mean_overlap < 0.9);
      assert.deepEqual(await answers(url), before);

      const cutover = await postJson<{ active_version: string; check: { mean_overlap: number } }>(
        `${url}/v1/collections/docs/cutover`,
        { check: { queries: TOPICS, min_overlap: 0 } },
      );
      assert.equal(cutover.status, 200, JSON.stringify(cutover.body));
      assert.equal(cutover.body.active_version, "docs__v2");
      assert.equal(cutover.body.check.mean_overlap, checked.body.error.details.mean_overlap);
      // Search answers from the new version (queries embedded by its model), every chunk once.
      assert.deepEqual((await search(url, "a note", 5000)).sort(), all);
      const [top] = await search(url, stored[17]?.text ?? "", 1);
      assert.equal(top, "s17", "the real model finds a chunk by its own text");
      const real2 = real.body.data[0]?.embedding ?? [];
      assert.equal(real2.length, 384);
      const v2 = backing.rows("docs__v2");
      assert.equal(v2.length, 1, JSON.stringify(v2));
      assert.deepEqual([v2[0]?.n, v2[0]?.g], [all.length, all.length]);
      assert.notEqual(v2[0]?.f, info.body.fingerprint);
      assert.deepEqual(backing.rows("docs"), [{ f: info.body.fingerprint, n: all.length, g: all.length }]);

      const rollback = await postJson<{ active_version: string }>(`${url}/v1/collections/docs/rollback`, {});
      assert.equal(rollback.status, 200, JSON.stringify(rollback.body));
      assert.equal(rollback.body.active_version, "docs");
      assert.deepEqual(await answers(url), before);

      // Through the SDK: both versions listed with their model, and the one not reached deleted.
      const client = new RagEmbedClient({ baseUrl: url });
      const versions = await client.versions("docs");
      assert.deepEqual(
        versions.versions.map((v) => [v.name, v.active, v.points, v.model_served]),
        [
          ["docs", true, all.length, true],
          ["docs__v2", false, all.length, true],
        ],
      );
      const deleted = await client.deleteVersion("docs", 2);
      assert.equal(deleted.deleted_points, all.length);
      assert.deepEqual(backing.rows("docs__v2"), []);
      assert.deepEqual(await answers(url), before);

      // Built again after its deletion: a new job (not the first one's record), every chunk stored.
      const again = await client.reembed("docs", { model: "minilm" });
      assert.equal(again.duplicate, false);
      assert.notEqual(again.job_id, reembed.body.job_id);
      assert.equal(again.count, all.length);
      const rebuilt = await client.waitForJob(again.job_id, { timeoutMs: 600_000 });
      assert.equal(rebuilt.counts.stored, all.length);
      const listed2 = await client.versions("docs");
      assert.deepEqual(
        listed2.versions.map((v) => [v.name, v.points, v.reembed_job_id]),
        [
          ["docs", all.length, null],
          ["docs__v2", all.length, again.job_id],
        ],
      );
    });
  });
}
