import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { canonicalJson, pointId, sha256, windowPointId } from "../../src/domain/ids.js";
import type { NewChunk, VectorRecord } from "../../src/domain/types.js";
import {
  type BatchCommitter,
  byCollection,
  type ChunkWrite,
  SequentialCommitter,
} from "../../src/pipeline/batch-committer.js";
import type { Lease } from "../../src/queue/job-queue.js";
import { SqliteJobQueue } from "../../src/queue/sqlite/sqlite-job-queue.js";
import { SqliteAtomicCommitter } from "../../src/storage/sqlite-atomic-committer.js";
import { openSqliteDatabase, type SqliteDatabase } from "../../src/storage/sqlite-database.js";
import { SqliteVecStore } from "../../src/vector-store/sqlite-vec/sqlite-vec-store.js";
import type { VectorStore } from "../../src/vector-store/vector-store.js";
import { MP, TRUNCATE } from "./job-queue.contract.js";

const C = "docs";
const LEASE_MS = 1_000;

function chunk(chunkId: string, text: string): NewChunk {
  return { chunkId, text, documentId: null, payload: { text }, estimatedTokens: 4, overflow: TRUNCATE };
}

/** The points a chunk becomes: one, or `windows` windows whose first keeps the chunk's own id. */
function points(chunkId: string, text: string, windows = 1): VectorRecord[] {
  const payload = { text };
  const base = {
    documentId: null,
    contentHash: sha256(`content:${text}`),
    payloadHash: sha256(canonicalJson(payload)),
    vector: Float32Array.from([1, 0, 0]),
  };
  if (windows === 1) return [{ ...base, id: pointId(C, chunkId), chunkId, parentChunkId: null, payload }];
  return Array.from({ length: windows }, (_, i) => ({
    ...base,
    id: i === 0 ? pointId(C, chunkId) : windowPointId(C, chunkId, i),
    chunkId: `${chunkId}#${i}`,
    parentChunkId: chunkId,
    payload: { ...payload, window_index: i },
  }));
}

function commitOf(lease: Lease, text: string, windows = 1) {
  const writes: ChunkWrite[] = lease.chunks.map((c) => ({
    seq: c.seq,
    collection: C,
    records: points(c.chunkId, text, windows),
    replaces: c.chunkId,
    payloadUpdate: null,
  }));
  const outcomes = lease.chunks.map((c) => ({
    seq: c.seq,
    state: "stored" as const,
    tokens: 4,
    truncatedTokens: 0,
    windows,
    ...MP,
  }));
  return { leaseId: lease.id, writes, outcomes };
}

/** Records the store calls a committer makes, in order, and can fail one of them. */
function recording(store: VectorStore, calls: string[], failOn?: { op: string; once: boolean }): VectorStore {
  const maybeFail = (op: string) => {
    calls.push(op);
    if (failOn && failOn.op === op) {
      if (failOn.once) failOn.op = "";
      throw new Error(`injected ${op} failure`);
    }
  };
  return {
    ensureCollection: (spec) => store.ensureCollection(spec),
    upsert: async (c, r) => {
      maybeFail(`upsert ${r.map((x) => x.chunkId).join(",")}`);
      return store.upsert(c, r);
    },
    updatePayloads: async (c, u) => {
      maybeFail("updatePayloads");
      return store.updatePayloads(c, u);
    },
    fingerprints: (c, ids) => store.fingerprints(c, ids),
    deleteChunkRemnants: async (c, chunkIds, keep) => {
      maybeFail(`deleteRemnants ${chunkIds.join(",")}`);
      return store.deleteChunkRemnants(c, chunkIds, keep);
    },
    deleteByDocument: (c, d) => store.deleteByDocument(c, d),
    search: (c, v, k, f) => store.search(c, v, k, f),
    count: (c) => store.count(c),
    close: () => store.close(),
  };
}

interface Rig {
  queue: SqliteJobQueue;
  store: SqliteVecStore;
  committer: BatchCommitter;
  clock: { now: () => number; advance(ms: number): void };
}

const committers: Array<
  [string, (db: SqliteDatabase, store: SqliteVecStore, queue: SqliteJobQueue) => BatchCommitter]
> = [
  ["SqliteAtomicCommitter", (db, store, queue) => new SqliteAtomicCommitter(db, store, queue)],
  ["SequentialCommitter", (_db, store, queue) => new SequentialCommitter(store, queue)],
];

for (const [name, make] of committers) {
  describe(`${name}: a worker whose lease lapsed writes nothing`, () => {
    let db: SqliteDatabase;
    let dir: string;
    let rig: Rig;

    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), "commit-"));
      db = openSqliteDatabase(join(dir, "q.sqlite"));
      let t = 1_700_000_000_000;
      const clock = {
        now: () => t,
        advance: (ms: number) => {
          t += ms;
        },
      };
      const queue = new SqliteJobQueue(db, { now: clock.now, maxStalls: 5 });
      const store = new SqliteVecStore(db);
      await store.ensureCollection({ name: C, dimension: 3, distance: "Cosine" });
      rig = { queue, store, clock, committer: make(db, store, queue) };
    });

    afterEach(() => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    });

    const reserve = async () => {
      const lease = await rig.queue.reserve({ maxChunks: 10, maxTokens: 1_000, leaseMs: LEASE_MS });
      assert.ok(lease);
      return lease;
    };
    const enqueue = async (text: string) => {
      const r = await rig.queue.enqueue({ collection: C, chunks: [chunk("x", text)], maxQueueSize: 100 });
      assert.ok(r.accepted);
      return r.jobId;
    };
    const storedText = async () => {
      const [hit] = await rig.store.search(C, Float32Array.from([1, 0, 0]), 10);
      return hit?.payload.text;
    };

    it("an older version finishing late does not overwrite the newer one another worker stored", async () => {
      await enqueue("version one");
      const stalled = await reserve(); // worker A takes v1, then stalls past its lease
      rig.clock.advance(LEASE_MS + 1);
      const taken = await reserve(); // worker B takes v1 back and stores it
      assert.deepEqual(await rig.committer.commit(commitOf(taken, "version one")), { fenced: [] });
      const second = await enqueue("version two");
      const newer = await reserve();
      await rig.committer.commit(commitOf(newer, "version two"));
      assert.equal(await storedText(), "version two");

      const late = await rig.committer.commit(commitOf(stalled, "version one", 3));
      assert.deepEqual(late.fenced, [stalled.chunks[0]?.seq]);
      assert.equal(await storedText(), "version two", "the late worker wrote nothing");
      assert.equal(await rig.store.count(C), 1, "nor added its windows");
      assert.equal((await rig.queue.getJob(second))?.counts.stored, 1);
    });

    it("a lease that lapsed but was not taken by anyone still commits", async () => {
      await enqueue("only version");
      const lease = await reserve();
      rig.clock.advance(LEASE_MS + 1);
      assert.deepEqual(await rig.committer.commit(commitOf(lease, "only version")), { fenced: [] });
      assert.equal(await storedText(), "only version");
    });
  });
}

describe("SequentialCommitter: the order of writes survives a failure half way", () => {
  let db: SqliteDatabase;
  let dir: string;
  let queue: SqliteJobQueue;
  let store: SqliteVecStore;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "commit-"));
    db = openSqliteDatabase(join(dir, "q.sqlite"));
    queue = new SqliteJobQueue(db, { maxStalls: 5 });
    store = new SqliteVecStore(db);
    await store.ensureCollection({ name: C, dimension: 3, distance: "Cosine" });
  });

  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("deletes old windows, then writes windows, then the fingerprint point, then acks", async () => {
    const r = await queue.enqueue({ collection: C, chunks: [chunk("p", "new")], maxQueueSize: 10 });
    assert.ok(r.accepted);
    const lease = await queue.reserve({ maxChunks: 1, maxTokens: 100, leaseMs: 60_000 });
    assert.ok(lease);
    const calls: string[] = [];
    await new SequentialCommitter(recording(store, calls), queue).commit(commitOf(lease, "new", 3));
    assert.deepEqual(calls, ["deleteRemnants p", "upsert p#1,p#2,p#0"]);
  });

  it("a failed window delete leaves the old fingerprint, so the retry rewrites the chunk", async () => {
    // Old version: 4 windows. New version: 2 windows; the delete of the old windows fails once.
    await store.upsert(C, points("p", "old", 4));
    const r = await queue.enqueue({ collection: C, chunks: [chunk("p", "new")], maxQueueSize: 10 });
    assert.ok(r.accepted);
    const lease = await queue.reserve({ maxChunks: 1, maxTokens: 100, leaseMs: 60_000 });
    assert.ok(lease);
    const calls: string[] = [];
    const flaky = new SequentialCommitter(
      recording(store, calls, { op: "deleteRemnants p", once: true }),
      queue,
    );
    await assert.rejects(flaky.commit(commitOf(lease, "new", 2)), /injected deleteRemnants/);
    const fingerprint = (await store.fingerprints(C, [pointId(C, "p")])).get(pointId(C, "p"));
    assert.equal(fingerprint?.contentHash, sha256("content:old"), "the chunk still reads as changed");

    await flaky.commit(commitOf(lease, "new", 2));
    assert.equal(await store.count(C), 2, "old windows 2 and 3 are gone");
    assert.equal((await queue.getJob(r.jobId))?.counts.stored, 1);
  });

  it("byCollection puts every chunk's fingerprint point after its windows", () => {
    const groups = byCollection([
      { seq: 1, collection: C, records: points("a", "t", 3), replaces: "a", payloadUpdate: null },
      { seq: 2, collection: C, records: points("b", "t"), replaces: "b", payloadUpdate: null },
    ]);
    assert.deepEqual(
      groups.map((g) => g.records.map((r) => r.chunkId)),
      [["a#1", "a#2", "a#0", "b"]],
    );
    assert.deepEqual(groups[0]?.remnants.chunkIds, ["a", "b"]);
  });
});
