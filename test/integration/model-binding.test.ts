/**
 * A collection is bound to the model that created it: a server restarted on the same data with
 * another model (here the random-weight MiniLM after the real one: same name, same graph, other
 * weights) refuses to ingest into it with 409 model_mismatch and queues nothing, on the embedded
 * stack and on Redis + Qdrant. A new collection takes the new model's vectors.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { seedChunks, waitForJobDone } from "../helpers/fixtures.js";
import { realModelDir, tempDir, testModelDir } from "../helpers/paths.js";
import { type QdrantContractServer, startQdrantContractServer } from "../helpers/qdrant-contract-server.js";
import { RedisTestServer } from "../helpers/redis-server.js";
import {
  getJson,
  postJson,
  type ServerProcess,
  startServerProcess,
  waitUntilReady,
} from "../helpers/server-process.js";

/** sha256 of the real model's int8 ONNX (../shared/models/README.md). */
const REAL_WEIGHTS = "afdb6f1a0e45b715d0bb9b11772f032c399babd23bfc31fed1c170afc848bdb1";
const MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2";

interface CollectionInfo {
  name: string;
  dimension: number;
  points: number;
  binding: {
    model: string;
    weights_sha256: string | null;
    dimension: number;
    fingerprint: string;
    adopted: boolean;
  };
  model_matches: boolean | null;
}

interface ErrorBody {
  error: {
    code: string;
    message: string;
    details: { bound: { fingerprint: string }; current: { fingerprint: string } };
  };
}

const chunk = (id: string) => ({
  id,
  text: `text of ${id}: take with water after meals`,
  document_id: "doc-1",
});

async function started(env: Record<string, string>): Promise<ServerProcess> {
  const server = await startServerProcess(env);
  await waitUntilReady(server.url, 300_000);
  return server;
}

async function send(
  url: string,
  method: "POST" | "PUT",
  body: unknown,
): Promise<{ status: number; body: ErrorBody }> {
  const response = await fetch(url, {
    method,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as ErrorBody };
}

/** What the queue holds: jobs listed and chunks pending or running. */
async function queueCounts(url: string): Promise<{ jobs: number; pending: number; running: number }> {
  const jobs = await getJson<{ jobs: unknown[] }>(`${url}/v1/jobs?limit=100`);
  const status = await getJson<{ queue: { pending_chunks: number; running_chunks: number } }>(
    `${url}/v1/status`,
  );
  return {
    jobs: jobs.body.jobs.length,
    pending: status.body.queue.pending_chunks,
    running: status.body.queue.running_chunks,
  };
}

const stacks: Array<{
  name: string;
  env: () => Promise<{ env: Record<string, string>; close(): Promise<void> }>;
}> = [
  {
    name: "embedded (SQLite queue, sqlite-vec)",
    env: async () => ({ env: { DATA_DIR: tempDir("binding") }, close: async () => {} }),
  },
  {
    name: "Redis queue (BullMQ), Qdrant (spec-validating stand-in)",
    env: async () => {
      const redis = await RedisTestServer.start();
      const qdrant: QdrantContractServer = await startQdrantContractServer();
      return {
        env: {
          DATA_DIR: tempDir("binding"),
          QUEUE_URL: redis.url,
          VECTOR_STORE: "qdrant",
          QDRANT_URL: qdrant.url,
        },
        close: async () => {
          await qdrant.close();
          await redis.stop();
        },
      };
    },
  },
];

for (const stack of stacks) {
  describe(`collections bound to their model: ${stack.name}`, () => {
    const cleanups: Array<() => Promise<void>> = [];
    after(async () => {
      for (const cleanup of cleanups.reverse()) await cleanup();
    });

    it("a restart with other weights answers 409 model_mismatch on every ingest route and queues nothing", {
      timeout: 900_000,
    }, async () => {
      const backing = await stack.env();
      cleanups.push(backing.close);

      // 1. The real model creates the collections: bound to its name and weights.
      const real = await started({ ...backing.env, EMBEDDING_MODEL: realModelDir() });
      cleanups.push(async () => void (await real.stop("SIGKILL").catch(() => null)));
      const ingest = await postJson<{ job_id: string }>(`${real.url}/v1/collections/docs/chunks`, {
        chunks: [chunk("a"), chunk("b"), chunk("c")],
      });
      assert.equal(ingest.status, 202);
      assert.equal((await waitForJobDone(real.url, ingest.body.job_id)).counts.stored, 3);
      const seeded = await postJson<{ job_id: string }>(`${real.url}/test/embed`, seedChunks(2));
      assert.equal((await waitForJobDone(real.url, seeded.body.job_id)).counts.stored, 2);

      const bound = await getJson<CollectionInfo>(`${real.url}/v1/collections/docs`);
      assert.equal(bound.status, 200);
      assert.equal(bound.body.points, 3);
      assert.equal(bound.body.binding.model, MODEL_NAME);
      assert.equal(bound.body.binding.weights_sha256, REAL_WEIGHTS);
      assert.equal(bound.body.binding.dimension, 384);
      assert.match(bound.body.binding.fingerprint, /^[0-9a-f]{12}$/);
      assert.equal(bound.body.binding.adopted, false);
      assert.equal(bound.body.model_matches, true);
      const info = await getJson<{ fingerprint: string; weights_sha256: string }>(`${real.url}/model-info`);
      assert.equal(
        info.body.fingerprint,
        bound.body.binding.fingerprint,
        "/model-info names the same profile",
      );
      assert.equal(info.body.weights_sha256, REAL_WEIGHTS);
      assert.equal(await real.stop("SIGTERM"), 0);

      // 2. Same data, the random-weight MiniLM: same name, same graph, same dimension, other weights.
      const random = await started({ ...backing.env, EMBEDDING_MODEL: testModelDir() });
      cleanups.push(async () => void (await random.stop("SIGKILL").catch(() => null)));
      const before = await queueCounts(random.url);
      const refused = [
        await send(`${random.url}/v1/collections/docs/chunks`, "POST", { chunks: [chunk("a"), chunk("d")] }),
        await send(`${random.url}/v1/collections/docs/documents/doc-1`, "PUT", { chunks: [chunk("a")] }),
        await send(`${random.url}/test/embed`, "POST", seedChunks(2)),
      ];
      for (const answer of refused) {
        assert.equal(answer.status, 409, JSON.stringify(answer.body));
        assert.equal(answer.body.error.code, "model_mismatch");
        const { message, details } = answer.body.error;
        // Both named: the collection's weights and the server's.
        assert.ok(message.includes(REAL_WEIGHTS.slice(0, 12)), message);
        assert.notEqual(details.bound.fingerprint, details.current.fingerprint);
      }
      assert.deepEqual(await queueCounts(random.url), before, "nothing enqueued");

      const shown = await getJson<CollectionInfo>(`${random.url}/v1/collections/docs`);
      assert.equal(shown.body.binding.fingerprint, bound.body.binding.fingerprint, "the binding is kept");
      assert.equal(shown.body.model_matches, false);
      assert.equal(shown.body.points, 3);

      // 3. Moving to the new model today: a new collection, bound to it.
      const moved = await postJson<{ job_id: string }>(`${random.url}/v1/collections/docs_v2/chunks`, {
        chunks: [chunk("a"), chunk("b")],
      });
      assert.equal(moved.status, 202);
      assert.equal((await waitForJobDone(random.url, moved.body.job_id)).counts.stored, 2);
      const fresh = await getJson<CollectionInfo>(`${random.url}/v1/collections/docs_v2`);
      assert.equal(fresh.body.binding.model, MODEL_NAME);
      assert.notEqual(fresh.body.binding.weights_sha256, REAL_WEIGHTS);
      assert.notEqual(fresh.body.binding.fingerprint, bound.body.binding.fingerprint);
      assert.equal(fresh.body.model_matches, true);
      assert.equal(await random.stop("SIGTERM"), 0);
    });
  });
}
