/**
 * Blue/green re-embedding, on the embedded stack and on the Redis queue with the sqlite-vec store, and
 * on the SQLite queue with VECTOR_STORE=qdrant against the Qdrant contract double (where the cutover
 * and the rollback must each be one POST /collections/aliases): a collection written by the random-weight MiniLM,
 * the server restarted on the same DATA_DIR with the real MiniLM (ingest → 409 model_mismatch),
 * POST reembed builds version 2 from the stored text while new chunks arrive (routed to version 2),
 * cutover makes search answer from version 2 with every chunk exactly once and every point of the
 * new model, and rollback brings back the old answers.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { RagEmbedClient } from "../../src/client/index.js";
import { waitForJobDone } from "../helpers/fixtures.js";
import { realModelDir, tempDir, testModelDir } from "../helpers/paths.js";
import { type QdrantContractServer, startQdrantContractServer } from "../helpers/qdrant-contract-server.js";
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

const STORED = 200;
const ARRIVING = 40;
const TOPICS = ["aspirin dosage", "tax returns", "river fishing", "jazz piano", "tomato soil", "bike brakes"];

const chunk = (id: string, i: number) => ({
  id,
  text: `${id}: a note on ${TOPICS[i % TOPICS.length]}, number ${i}, with details only this note has`,
  document_id: `doc-${i % 10}`,
});

async function started(env: Record<string, string>): Promise<ServerProcess> {
  const server = await startServerProcess(env);
  await waitUntilReady(server.url, 300_000);
  return server;
}

async function ingest(
  url: string,
  chunks: unknown[],
): Promise<{ status: number; body: { job_id: string; error?: { code: string } } }> {
  return postJson(`${url}/v1/collections/docs/chunks`, { chunks });
}

interface Hit {
  id: string;
  score: number;
}

async function search(url: string, query: string, topK: number, collection = "docs"): Promise<Hit[]> {
  const { status, body } = await postJson<{ hits: Hit[] }>(`${url}/v1/collections/${collection}/search`, {
    query,
    top_k: topK,
  });
  assert.equal(status, 200);
  return body.hits;
}

async function answers(url: string): Promise<string[][]> {
  const out: string[][] = [];
  for (const topic of TOPICS) out.push((await search(url, topic, 10)).map((h) => h.id));
  return out;
}

interface Backing {
  env: Record<string, string>;
  /** What version `docs`, `docs__v2`, ... holds in the store. */
  rows(version: string): VersionRows;
  /** The Qdrant double, on the Qdrant stack. */
  qdrant?: QdrantContractServer;
  close(): Promise<void>;
}

const stacks: Array<{ name: string; backing: (label: string) => Promise<Backing> }> = [
  {
    name: "embedded (SQLite queue, sqlite-vec)",
    backing: async (label) => {
      const dataDir = tempDir(label);
      return { env: { DATA_DIR: dataDir }, rows: (v) => versionRows(dataDir, v), close: async () => {} };
    },
  },
  {
    name: "Redis queue (BullMQ), sqlite-vec",
    backing: async (label) => {
      const redis = await RedisTestServer.start();
      const dataDir = tempDir(label);
      return {
        // A SIGKILLed server's leases expire before a restarted one can take its chunks back:
        // short ones keep that wait to seconds.
        env: { DATA_DIR: dataDir, QUEUE_URL: redis.url, LEASE_SECONDS: "5" },
        rows: (v) => versionRows(dataDir, v),
        close: () => redis.stop(),
      };
    },
  },
  {
    name: "SQLite queue, Qdrant (contract double)",
    backing: async (label) => {
      const qdrant = await startQdrantContractServer();
      return {
        env: { DATA_DIR: tempDir(label), VECTOR_STORE: "qdrant", QDRANT_URL: qdrant.url },
        rows: (v) => qdrantRows(qdrant, v),
        qdrant,
        close: async () => {
          const invalid = qdrant.requests.filter((r) => !r.valid);
          await qdrant.close();
          assert.deepEqual(invalid, [], "every request the servers sent validates against Qdrant's spec");
        },
      };
    },
  },
];

/**
 * On Qdrant, the alias changes `swap` made: exactly one POST /collections/aliases, deleting the alias
 * `docs` and creating it on `physical`, in one request.
 */
async function aliasSwap<T>(backing: Backing, physical: string, swap: () => Promise<T>): Promise<T> {
  const mark = backing.qdrant?.requests.length ?? 0;
  const result = await swap();
  if (backing.qdrant === undefined) return result;
  const updates = backing.qdrant.requests.slice(mark).filter((r) => r.operationId === "update_aliases");
  assert.deepEqual(
    updates.map((r) => ({ path: `${r.method} ${r.path}`, body: r.body })),
    [
      {
        path: "POST /collections/aliases",
        body: {
          actions: [
            { delete_alias: { alias_name: "docs" } },
            { create_alias: { collection_name: physical, alias_name: "docs" } },
          ],
        },
      },
    ],
  );
  assert.equal(backing.qdrant.aliases.get("docs"), physical);
  return result;
}

for (const stack of stacks)
  describe(`blue/green re-embedding: ${stack.name}`, () => {
    const cleanups: Array<() => Promise<void>> = [];
    after(async () => {
      for (const cleanup of cleanups.reverse()) await cleanup();
    });

    /** STORED chunks in collection `docs` of `dataDir`, written by the random-weight MiniLM. */
    async function storedByOldModel(env: Record<string, string>): Promise<ReturnType<typeof chunk>[]> {
      const old = await started({ ...env, EMBEDDING_MODEL: testModelDir() });
      cleanups.push(async () => void (await old.stop("SIGKILL").catch(() => null)));
      const stored = Array.from({ length: STORED }, (_, i) => chunk(`s${i}`, i));
      for (let start = 0; start < STORED; start += 100) {
        const sent = await ingest(old.url, stored.slice(start, start + 100));
        assert.equal(sent.status, 202);
        assert.equal((await waitForJobDone(old.url, sent.body.job_id)).counts.stored, 100);
      }
      await old.stop("SIGTERM");
      return stored;
    }

    it("re-embeds into version 2 while new chunks arrive, cuts over, and rolls back", {
      timeout: 900_000,
    }, async () => {
      const backing = await stack.backing("reembed");
      cleanups.push(backing.close);
      const env = backing.env;
      const stored = await storedByOldModel(env);

      const server = await started({ ...env, EMBEDDING_MODEL: realModelDir() });
      cleanups.push(async () => void (await server.stop("SIGKILL").catch(() => null)));
      const refused = await ingest(server.url, [chunk("late", 0)]);
      assert.equal(refused.status, 409);
      assert.equal(refused.body.error?.code, "model_mismatch");
      // Sent without a body, as `curl -X POST` does.
      const rollbackRefused = await fetch(`${server.url}/v1/collections/docs/rollback`, { method: "POST" });
      assert.equal(((await rollbackRefused.json()) as { error: { code: string } }).error.code, "no_version");
      const reembedBare = await fetch(`${server.url}/v1/collections/nothing/reembed`, { method: "POST" });
      assert.equal(
        ((await reembedBare.json()) as { error: { code: string } }).error.code,
        "collection_not_found",
      );

      const reembed = await postJson<{
        job_id: string;
        count: number;
        to_version: string;
        from_version: string;
      }>(`${server.url}/v1/collections/docs/reembed`, {});
      assert.equal(reembed.status, 202, JSON.stringify(reembed.body));
      assert.equal(reembed.body.count, STORED);
      assert.equal(reembed.body.from_version, "docs");
      assert.equal(reembed.body.to_version, "docs__v2");
      // A repeated POST finds the same job and queues nothing more.
      const again = await postJson<{ job_id: string }>(`${server.url}/v1/collections/docs/reembed`, {});
      assert.equal(again.body.job_id, reembed.body.job_id);

      // New chunks while it runs: accepted (into version 2), not refused.
      const arriving = Array.from({ length: ARRIVING }, (_, i) => chunk(`n${i}`, i));
      const live = await ingest(server.url, arriving);
      assert.equal(live.status, 202, JSON.stringify(live.body));
      // A document deleted while it runs is gone from both versions (its re-embedded copies too).
      const deleted = await fetch(`${server.url}/v1/collections/docs/documents/doc-9`, { method: "DELETE" });
      assert.equal(deleted.status, 200);
      const gone = (c: { document_id: string }) => c.document_id === "doc-9";
      const kept = [...stored, ...arriving].filter((c) => !gone(c));
      const before = await answers(server.url);

      for (const jobId of [reembed.body.job_id, live.body.job_id]) {
        const done = await waitForJobDone(server.url, jobId, 600_000);
        assert.equal(done.counts.dead + done.counts.queued + done.counts.running + done.counts.failed, 0);
      }
      // Until the cutover the name still reaches the old version; the new one is searched by its own name.
      assert.deepEqual(await answers(server.url), before);
      const preview = await search(server.url, "a note", 1000, "docs__v2");
      assert.deepEqual(preview.map((h) => h.id).sort(), kept.map((c) => c.id).sort());
      const versions = await getJson<{ active_version: string; next_version: string | null }>(
        `${server.url}/v1/collections/docs`,
      );
      assert.deepEqual([versions.body.active_version, versions.body.next_version], ["docs", "docs__v2"]);

      const cutover = await aliasSwap(backing, "docs__v2", () =>
        postJson<{ active_version: string }>(`${server.url}/v1/collections/docs/cutover`, {}),
      );
      assert.equal(cutover.status, 200, JSON.stringify(cutover.body));
      assert.equal(cutover.body.active_version, "docs__v2");

      const info = await getJson<{
        points: number;
        model_matches: boolean;
        binding: { fingerprint: string };
        active_version: string;
        next_version: string | null;
      }>(`${server.url}/v1/collections/docs`);
      const model = await getJson<{ fingerprint: string }>(`${server.url}/model-info`);
      assert.equal(info.body.points, kept.length);
      assert.equal(info.body.model_matches, true);
      assert.equal(info.body.binding.fingerprint, model.body.fingerprint);
      assert.equal(info.body.active_version, "docs__v2");
      assert.equal(info.body.next_version, null);

      // Every chunk exactly once in the answers, from the new version.
      const all = await search(server.url, "a note", 1000);
      const ids = all.map((h) => h.id).sort();
      assert.equal(ids.length, kept.length);
      assert.deepEqual(ids, kept.map((c) => c.id).sort());
      const [top] = await search(server.url, stored[17]?.text ?? "", 1);
      assert.equal(top?.id, "s17", "the real model finds a chunk by its own text");

      // Every point of version 2 carries the new model's fingerprint; version 1 is kept untouched.
      assert.deepEqual(backing.rows("docs__v2"), [
        { f: model.body.fingerprint, n: kept.length, g: kept.length },
      ]);
      const [oldVersion] = backing.rows("docs");
      assert.equal(oldVersion?.n, stored.filter((c) => !gone(c)).length);
      // After the cutover a chunk sent again under the collection's name replaces its point in
      // version 2 (one point id in every version), never adds one.
      const edited = { ...chunk("s5", 5), text: "s5: rewritten, now about lighthouse keepers" };
      const rewrite = await ingest(server.url, [edited]);
      assert.equal(rewrite.status, 202);
      assert.equal((await waitForJobDone(server.url, rewrite.body.job_id)).counts.stored, 1);
      const [rewritten] = await search(server.url, edited.text, 1);
      assert.equal(rewritten?.id, "s5");
      assert.equal(
        (await getJson<{ points: number }>(`${server.url}/v1/collections/docs`)).body.points,
        kept.length,
      );
      // A chunk re-embedded into version 2 and sent again unchanged under the name is found there.
      const resent = await ingest(server.url, [chunk("s6", 6)]);
      assert.equal((await waitForJobDone(server.url, resent.body.job_id)).counts.unchanged, 1);
      // A second cutover has no version to go to.
      const noNext = await postJson<{ error: { code: string } }>(
        `${server.url}/v1/collections/docs/cutover`,
        {},
      );
      assert.equal(noNext.body.error.code, "no_version");

      const rollback = await aliasSwap(backing, "docs__v1", () =>
        postJson<{ active_version: string }>(`${server.url}/v1/collections/docs/rollback`, {}),
      );
      assert.equal(rollback.status, 200, JSON.stringify(rollback.body));
      assert.equal(rollback.body.active_version, "docs");
      assert.deepEqual(await answers(server.url), before);
    });

    it("SIGKILL during a re-embed: after a restart it finishes, every chunk once in each version", {
      timeout: 900_000,
    }, async () => {
      const backing = await stack.backing("reembed-kill");
      cleanups.push(backing.close);
      const env = backing.env;
      const stored = await storedByOldModel(env);
      const first = await started({ ...env, EMBEDDING_MODEL: realModelDir() });
      cleanups.push(async () => void (await first.stop("SIGKILL").catch(() => null)));
      const reembed = await postJson<{ job_id: string }>(`${first.url}/v1/collections/docs/reembed`, {});
      assert.equal(reembed.status, 202);
      // Killed once some chunks are stored (or at once if the job is quicker than the first poll).
      await waitFor(
        async () => {
          const job = await getJson<{ counts: { stored: number } }>(
            `${first.url}/v1/jobs/${reembed.body.job_id}`,
          );
          return job.body.counts.stored > 0 ? true : undefined;
        },
        { what: "first re-embedded chunks", timeoutMs: 300_000, intervalMs: 20 },
      );
      await first.stop("SIGKILL");

      const second = await started({ ...env, EMBEDDING_MODEL: realModelDir() });
      cleanups.push(async () => void (await second.stop("SIGKILL").catch(() => null)));
      // Through the SDK this time.
      const client = new RagEmbedClient({ baseUrl: second.url });
      const again = await client.reembed("docs");
      assert.equal(again.job_id, reembed.body.job_id);
      assert.equal(again.duplicate, true);
      const done = await waitForJobDone(second.url, reembed.body.job_id, 600_000);
      assert.equal(done.counts.stored + done.counts.unchanged, STORED);
      assert.equal(done.counts.dead, 0);
      const model = await getJson<{ fingerprint: string }>(`${second.url}/model-info`);
      assert.deepEqual(backing.rows("docs__v2"), [{ f: model.body.fingerprint, n: STORED, g: STORED }]);
      const [oldVersion] = backing.rows("docs");
      assert.equal(oldVersion?.n, STORED);
      assert.equal(oldVersion?.g, STORED);
      const cutover = await aliasSwap(backing, "docs__v2", () => client.cutover("docs"));
      assert.equal(cutover.active_version, "docs__v2");
      const ids = (await search(second.url, "a note", 1000)).map((h) => h.id).sort();
      assert.deepEqual(ids, stored.map((c) => c.id).sort());
      const rollback = await aliasSwap(backing, "docs__v1", () => client.rollback("docs"));
      assert.equal(rollback.active_version, "docs");
    });
  });
