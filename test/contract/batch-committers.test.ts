import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { pointId } from "../../src/domain/ids.js";
import type { ModelInfo, NewChunk, Payload } from "../../src/domain/types.js";
import { SqliteAtomicCommitter } from "../../src/embedded/sqlite-atomic-committer.js";
import {
  type BatchCommitter,
  CHANGED_REASON,
  SequentialCommitter,
} from "../../src/pipeline/batch-committer.js";
import {
  type EmbeddedChunk,
  embeddedChunk,
  type PlannedChunk,
  planChunks,
} from "../../src/pipeline/point-planner.js";
import type { Lease } from "../../src/queue/job-queue.js";
import { SqliteJobQueue } from "../../src/queue/sqlite/sqlite-job-queue.js";
import { openSqliteDatabase, type SqliteDatabase } from "../../src/storage/sqlite-database.js";
import { QdrantStore } from "../../src/vector-store/qdrant/qdrant-store.js";
import { SqliteVecStore } from "../../src/vector-store/sqlite-vec/sqlite-vec-store.js";
import type { VectorStore } from "../../src/vector-store/vector-store.js";
import { startQdrantContractServer } from "../helpers/qdrant-contract-server.js";
import { uniqueCollection } from "./vector-store.contract.js";

const LEASE_MS = 1_000;
const RETRY = { delayMs: 100, maxAttempts: 5 };
const MODEL: ModelInfo = {
  id: "test-model",
  profile: "test-profile",
  dimension: 3,
  maxTokens: 16,
  pooling: "mean",
  normalize: true,
  prefixes: { passage: "", query: "" },
  dtype: "q8",
};
/** The fake embedder's vector per text, so a search tells which version a point came from. */
const VECTORS: Record<string, number[]> = { "version one": [1, 0, 0], "version two": [0, 1, 0] };

interface Rig {
  store: VectorStore;
  committer: BatchCommitter;
  close(): Promise<void>;
}

/** Each committer on each store it runs with in production; the queue is always the real SQLite one. */
const rigs: Array<[string, (db: SqliteDatabase, queue: SqliteJobQueue) => Promise<Rig>]> = [
  [
    "SqliteAtomicCommitter (embedded store)",
    async (db, queue) => {
      const store = new SqliteVecStore(db);
      return { store, committer: new SqliteAtomicCommitter(db, store, queue), close: async () => {} };
    },
  ],
  [
    "SequentialCommitter (SQLite store)",
    async (db, queue) => {
      const store = new SqliteVecStore(db);
      return { store, committer: new SequentialCommitter(store, queue), close: async () => {} };
    },
  ],
  [
    "SequentialCommitter (Qdrant contract server)",
    async (_db, queue) => {
      const server = await startQdrantContractServer();
      const store = new QdrantStore({ url: server.url, timeoutMs: 2_000 });
      return { store, committer: new SequentialCommitter(store, queue), close: () => server.close() };
    },
  ],
];

for (const [name, open] of rigs) {
  describe(`${name}: the newest version of a chunk wins, whatever the timing`, () => {
    let dir: string;
    let db: SqliteDatabase;
    let queue: SqliteJobQueue;
    let rig: Rig;
    let collection: string;
    let t: number;

    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), "commit-"));
      db = openSqliteDatabase(join(dir, "q.sqlite"));
      t = 1_700_000_000_000;
      queue = new SqliteJobQueue(db, { now: () => t, maxStalls: 5 });
      rig = await open(db, queue);
      collection = uniqueCollection();
      await rig.store.ensureCollection({ name: collection, dimension: 3, distance: "Cosine" });
    });

    afterEach(async () => {
      await rig.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    });

    const enqueue = async (text: string, documentId: string | null = null) => {
      const chunk: NewChunk = {
        chunkId: "x",
        text,
        documentId,
        payload: { text },
        estimatedTokens: 4,
        overflow: { policy: "split", overlapTokens: 0 },
      };
      const r = await queue.enqueue({ collection, chunks: [chunk], maxQueueSize: 100 });
      assert.ok(r.accepted);
      return r.jobId;
    };
    const reserve = async () => {
      const lease = await queue.reserve({ maxChunks: 10, maxTokens: 1_000, leaseMs: LEASE_MS });
      assert.ok(lease);
      return lease;
    };
    /** What a worker does before committing: plan from the store, then "embed" into `windows` windows. */
    const work = async (lease: Lease, windows: number): Promise<PlannedChunk[]> => {
      const ids = lease.chunks.map((c) => pointId(collection, c.chunkId));
      const plan = planChunks(lease.chunks, MODEL, await rig.store.fingerprints(collection, ids));
      return [
        ...plan.ready,
        ...plan.toEmbed.map((p) => embeddedChunk(p, embed(p.chunk.text, windows), MODEL).planned),
      ];
    };
    const commit = (lease: Lease, chunks: PlannedChunk[]) =>
      rig.committer.commit({ leaseId: lease.id, chunks, retryChanged: RETRY });
    /** Every stored point: its chunk id and payload, in chunk id order. */
    const stored = async (): Promise<Array<[string, Payload]>> => {
      const hits = await rig.store.search(collection, Float32Array.from([0, 1, 0]), 100);
      return hits
        .map((h): [string, Payload] => [h.chunkId, h.payload])
        .sort(([a], [b]) => a.localeCompare(b));
    };
    const counts = async (jobId: string) => {
      const job = await queue.getJob(jobId);
      assert.ok(job);
      return { stored: job.counts.stored, superseded: job.counts.superseded, running: job.counts.running };
    };

    it("a stalled worker's 5 windows of v1, committed after v2's 2 windows, leave v2 alone", async () => {
      const first = await enqueue("version one");
      const a = await reserve(); // worker A takes v1 ...
      const late = await work(a, 5); // ... and embeds it, then stalls
      const second = await enqueue("version two");
      const b = await reserve(); // v1 is still A's: worker B gets v2 only
      assert.deepEqual(
        b.chunks.map((c) => c.text),
        ["version two"],
      );
      assert.deepEqual(
        (await commit(b, await work(b, 2))).acked.map((o) => o.state),
        ["stored"],
      );
      t += LEASE_MS + 1; // A's lease lapses, nobody takes v1 back; now A commits

      const result = await commit(a, late);
      assert.deepEqual(
        result.acked.map((o) => o.state),
        ["superseded"],
        "the store refused v1",
      );
      assert.deepEqual(await stored(), [
        [
          "x#0",
          // The chunk's text is stored once, across its windows' own texts.
          { parent_chunk_id: "x", window_index: 0, window_count: 2, window_text: "versio" },
        ],
        [
          "x#1",
          // The chunk's text is stored once, across its windows' own texts.
          { parent_chunk_id: "x", window_index: 1, window_count: 2, window_text: "n two" },
        ],
      ]);
      const [top] = await rig.store.search(collection, Float32Array.from([0, 1, 0]), 1);
      assert.ok(top && Math.abs(top.score - 1) < 1e-5, "v2's vector");
      assert.deepEqual(await counts(second), { stored: 1, superseded: 0, running: 0 });
      assert.deepEqual(await counts(first), { stored: 0, superseded: 1, running: 0 });
    });

    it("a worker whose v1 was taken back with v2 by another commits late: v2 stays, v1 counts once as superseded", async () => {
      const first = await enqueue("version one");
      const a = await reserve();
      const late = await work(a, 5);
      t += LEASE_MS + 1; // A stalls past its lease
      const second = await enqueue("version two");
      const b = await reserve(); // B takes v1 back, and v2
      assert.deepEqual(
        b.chunks.map((c) => c.text),
        ["version one", "version two"],
      );
      const bResult = await commit(b, await work(b, 2));
      assert.deepEqual(
        bResult.acked.map((o) => o.state),
        ["superseded", "stored"],
        "v1 never embedded by B",
      );

      const result = await commit(a, late);
      // The atomic committer sees the lease is gone and writes nothing; the sequential one writes,
      // the store refuses, and the queue ignores the ack of a chunk B holds the receipt of.
      assert.ok(
        result.fenced.length === 1 || result.acked.every((o) => o.state === "superseded"),
        JSON.stringify(result),
      );
      assert.equal((await stored()).length, 2);
      assert.equal((await stored()).map(([, payload]) => payload.window_text).join(""), "version two");
      assert.deepEqual(await counts(second), { stored: 1, superseded: 0, running: 0 });
      assert.deepEqual(await counts(first), { stored: 0, superseded: 1, running: 0 });
    });

    it("a touch that finds the chunk gone sends it back with a short retry; the retry stores it", async () => {
      await enqueue("version one", "doc");
      const first = await reserve();
      await commit(first, await work(first, 1));
      const again = await enqueue("version one", "doc");
      const b = await reserve();
      const planned = await work(b, 1);
      assert.equal(planned[0]?.write?.kind, "touch", "same content: planned without embedding");
      // An operator deletes it meanwhile.
      assert.equal((await rig.store.deleteDocument(collection, "doc", Number.MAX_SAFE_INTEGER)).deleted, 1);

      const result = await commit(b, planned);
      assert.deepEqual(result.changed, [b.chunks[0]?.seq]);
      assert.deepEqual(result.acked, []);
      const [receipt] = (await queue.listChunks(again, { limit: 10 })).items;
      assert.equal(receipt?.state, "failed");
      assert.equal(receipt?.lastError, CHANGED_REASON);

      t += RETRY.delayMs;
      const retry = await reserve();
      assert.equal(retry.chunks[0]?.seq, b.chunks[0]?.seq);
      assert.deepEqual(
        (await commit(retry, await work(retry, 1))).acked.map((o) => o.state),
        ["stored"],
      );
      assert.deepEqual(
        (await stored()).map(([chunkId]) => chunkId),
        ["x"],
      );
    });
  });
}

function embed(text: string, windows: number): EmbeddedChunk {
  const vector = Float32Array.from(VECTORS[text] ?? [0, 0, 1]);
  return {
    vector,
    tokens: 4,
    truncatedTokens: 0,
    windows:
      windows === 1
        ? null
        : windowTexts(text, windows).map((window) => ({ text: window, vector, tokens: 2 })),
  };
}

/** `count` consecutive pieces of the text, as the splitter's windows are (substrings, in order). */
function windowTexts(text: string, count: number): string[] {
  const size = Math.ceil(text.length / count);
  return Array.from({ length: count }, (_, i) => text.slice(i * size, (i + 1) * size)).filter(Boolean);
}
