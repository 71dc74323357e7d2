import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import type { ChunkReceipt, NewChunk, OverflowSpec, Payload, QueuedChunk } from "../../src/domain/types.js";
import type { JobQueue, JobQueueOptions, Lease, QueueStats } from "../../src/queue/job-queue.js";

/**
 * A queue under test plus a way to move its time forward. Adapters with an injectable clock advance
 * it; an adapter on a real clock (Redis/BullMQ) may implement `advance` by sleeping: the suite only
 * ever advances by SHORT_MS-sized steps (about a second), and uses LONG_MS leases wherever nothing
 * is meant to expire.
 */
export interface JobQueueFixture {
  queue: JobQueue;
  clock: { advance(ms: number): void | Promise<void> };
  cleanup(): Promise<void>;
}

/** Lease and retry delay for tests that let time pass. */
const SHORT_MS = 1_000;
/** Lease for tests where nothing may expire, even on a slow machine with a real clock. */
const LONG_MS = 600_000;
const ROOMY = 1_000_000;

/** Model and profile of the outcomes acked in these tests. */
export const MP = { model: "test-model", profile: "test-profile" } as const;
export const TRUNCATE: OverflowSpec = { policy: "truncate", overlapTokens: 0 };
const STALL_REASON = (n: number) =>
  `worker stopped while processing this chunk ${n} times (crash, kill or lease timeout)`;

function chunk(chunkId: string, estimatedTokens = 10, text = `text of ${chunkId}`): NewChunk {
  return {
    chunkId,
    text,
    documentId: `doc-${chunkId}`,
    payload: { chunkId },
    estimatedTokens,
    overflow: TRUNCATE,
  };
}

function ids(lease: Lease | null): string[] {
  assert.ok(lease, "expected a reservation");
  return lease.chunks.map((c) => c.chunkId);
}

function texts(lease: Lease | null): string[] {
  assert.ok(lease, "expected a reservation");
  return lease.chunks.map((c) => c.text);
}

/** Receipt fields that do not depend on the adapter's clock or sequence. */
function receiptView(r: ChunkReceipt) {
  const { seq: _seq, updatedAt, ...rest } = r;
  assert.equal(new Date(updatedAt).toISOString(), updatedAt, "updatedAt is ISO");
  return rest;
}

const QUEUED_RECEIPT = {
  state: "queued",
  attempts: 0,
  tokens: null,
  truncatedTokens: 0,
  windows: null,
  overflow: "truncate",
  model: null,
  profile: null,
  lastError: null,
} as const;

/**
 * `factory(options)` builds a queue with those options (e.g. maxStalls) over the adapter defaults.
 */
export function jobQueueContract(
  name: string,
  factory: (options?: Partial<JobQueueOptions>) => Promise<JobQueueFixture>,
): void {
  describe(`JobQueue contract: ${name}`, () => {
    let fixture: JobQueueFixture;
    let queue: JobQueue;

    beforeEach(async () => {
      fixture = await factory();
      queue = fixture.queue;
    });

    afterEach(async () => {
      await fixture.queue.close();
      await fixture.cleanup();
    });

    const advance = async (ms: number): Promise<void> => {
      await fixture.clock.advance(ms);
    };

    async function enqueue(chunks: NewChunk[], collection = "docs"): Promise<string> {
      const result = await queue.enqueue({ collection, chunks, maxQueueSize: ROOMY });
      assert.ok(result.accepted, "enqueue refused");
      return result.jobId;
    }

    function reserve(maxChunks = 100, leaseMs = LONG_MS, maxTokens = ROOMY): Promise<Lease | null> {
      return queue.reserve({ maxChunks, maxTokens, leaseMs });
    }

    async function expectStats(expected: QueueStats, message?: string): Promise<void> {
      assert.deepEqual(await queue.stats(), expected, message);
    }

    async function counts(jobId: string) {
      const job = await queue.getJob(jobId);
      assert.ok(job, `job ${jobId} not found`);
      return { state: job.state, ...job.counts };
    }

    function seqs(lease: Lease, ...chunkIds: string[]): number[] {
      return chunkIds.map((id) => {
        const found = lease.chunks.find((c) => c.chunkId === id);
        assert.ok(found, `${id} is not in the lease`);
        return found.seq;
      });
    }

    it("getJob returns null for an unknown job", async () => {
      assert.equal(await queue.getJob("00000000-0000-4000-8000-000000000000"), null);
    });

    it("enqueue creates a queued job with exact counts and stats", async () => {
      const result = await queue.enqueue({
        collection: "docs",
        chunks: [chunk("a", 10), chunk("b", 20), chunk("c", 30)],
        maxQueueSize: 10,
      });
      assert.ok(result.accepted);
      assert.equal(result.count, 3);
      assert.equal(result.duplicate, false);

      const job = await queue.getJob(result.jobId);
      assert.ok(job);
      assert.equal(job.id, result.jobId);
      assert.equal(job.collection, "docs");
      assert.equal(job.state, "queued");
      assert.deepEqual(job.counts, {
        total: 3,
        queued: 3,
        running: 0,
        stored: 0,
        unchanged: 0,
        failed: 0,
        dead: 0,
        discarded: 0,
        superseded: 0,
        cancelled: 0,
      });
      assert.deepEqual(job.failures, []);
      assert.equal(new Date(job.createdAt).toISOString(), job.createdAt);
      assert.equal(new Date(job.updatedAt).toISOString(), job.updatedAt);
      await expectStats({ pending: 3, running: 0, dead: 0, pendingTokens: 60 });

      const other = await enqueue([chunk("d")]);
      assert.notEqual(other, result.jobId);
    });

    it("refuses a request that would overflow the queue and writes nothing of it", async () => {
      await enqueue([chunk("a"), chunk("b"), chunk("c")]);
      const refused = await queue.enqueue({
        collection: "docs",
        chunks: [chunk("x1"), chunk("x2"), chunk("x3")],
        maxQueueSize: 5,
      });
      assert.deepEqual(refused, {
        accepted: false,
        reason: "queue_full",
        limit: "chunks",
        pending: 3,
        pendingTokens: 30,
        maxQueueSize: 5,
        maxQueueTokens: Number.MAX_SAFE_INTEGER,
      });
      await expectStats({ pending: 3, running: 0, dead: 0, pendingTokens: 30 });

      const fits = await queue.enqueue({
        collection: "docs",
        chunks: [chunk("d"), chunk("e")],
        maxQueueSize: 5,
      });
      assert.equal(fits.accepted, true, "a request that exactly fills the queue is accepted");
      const full = await queue.enqueue({ collection: "docs", chunks: [chunk("x4")], maxQueueSize: 5 });
      assert.ok(!full.accepted);
      assert.deepEqual([full.limit, full.pending], ["chunks", 5]);

      assert.deepEqual(ids(await reserve()), ["a", "b", "c", "d", "e"]);
      assert.equal(await reserve(), null, "refused chunks must not be reservable");
      // Running chunks still count against capacity until they reach a terminal state.
      const stillFull = await queue.enqueue({ collection: "docs", chunks: [chunk("x5")], maxQueueSize: 5 });
      assert.equal(stillFull.accepted, false);
    });

    it("refuses a request whose estimated tokens would overflow the queue's token bound", async () => {
      await enqueue([chunk("a", 60)]);
      const refused = await queue.enqueue({
        collection: "docs",
        chunks: [chunk("b", 30), chunk("c", 20)],
        maxQueueSize: ROOMY,
        maxQueueTokens: 100,
      });
      assert.ok(!refused.accepted);
      assert.deepEqual(
        [refused.limit, refused.pending, refused.pendingTokens, refused.maxQueueTokens],
        ["tokens", 1, 60, 100],
      );
      await expectStats({ pending: 1, running: 0, dead: 0, pendingTokens: 60 });
      const fits = await queue.enqueue({
        collection: "docs",
        chunks: [chunk("b", 40)],
        maxQueueSize: ROOMY,
        maxQueueTokens: 100,
      });
      assert.equal(fits.accepted, true, "exactly at the bound is accepted");
    });

    it("enqueue with the id of an existing job adds nothing and returns that job (idempotency)", async () => {
      const jobId = "11111111-2222-4333-8444-555555555555";
      const first = await queue.enqueue({
        jobId,
        collection: "docs",
        chunks: [chunk("a"), chunk("b")],
        maxQueueSize: ROOMY,
      });
      assert.deepEqual(first, { accepted: true, jobId, count: 2, duplicate: false });
      const again = await queue.enqueue({
        jobId,
        collection: "docs",
        chunks: [chunk("a"), chunk("b")],
        maxQueueSize: ROOMY,
      });
      assert.deepEqual(again, { accepted: true, jobId, count: 2, duplicate: true });
      await expectStats({ pending: 2, running: 0, dead: 0, pendingTokens: 20 });
      assert.deepEqual(ids(await reserve()), ["a", "b"]);
      assert.equal(await reserve(), null, "the repeated request queued nothing");
      const afterFull = await queue.enqueue({
        jobId,
        collection: "docs",
        chunks: [chunk("a")],
        maxQueueSize: 1,
      });
      assert.equal(afterFull.accepted, true, "a repeat is answered even when the queue is full");
    });

    it("reserves in FIFO order across jobs, up to maxChunks", async () => {
      await enqueue([chunk("a0"), chunk("a1"), chunk("a2")]);
      await enqueue([chunk("b0"), chunk("b1")]);
      const first = await reserve(2);
      assert.deepEqual(ids(first), ["a0", "a1"]);
      assert.ok(first && first.chunks[0]!.seq < first.chunks[1]!.seq, "seq grows with enqueue order");
      assert.deepEqual(ids(await reserve(2)), ["a2", "b0"]);
      assert.deepEqual(ids(await reserve(2)), ["b1"]);
      assert.equal(await reserve(2), null);
    });

    it("keeps the token sum within maxTokens, takes an oversized first chunk alone, never reorders", async () => {
      await enqueue([chunk("c0", 40), chunk("c1", 40), chunk("c2", 40), chunk("c3", 500), chunk("c4", 10)]);
      assert.deepEqual(ids(await reserve(10, LONG_MS, 100)), ["c0", "c1"]);
      assert.deepEqual(ids(await reserve(10, LONG_MS, 100)), ["c2"], "c4 must not overtake c3");
      assert.deepEqual(ids(await reserve(10, LONG_MS, 100)), ["c3"], "an oversized chunk still goes alone");
      assert.deepEqual(ids(await reserve(10, LONG_MS, 100)), ["c4"]);
    });

    it("hands back every field of the chunk as enqueued", async () => {
      const payload: Payload = {
        docId: "leaflet-7",
        itemSequence: 3,
        name: "타이레놀",
        contents: "효능 효과",
        meta: { lang: "ko", tags: ["a", "b"], score: 0.5, ok: true, none: null },
      };
      const jobId = await enqueue(
        [
          {
            chunkId: "k1",
            text: "타이레놀 | 효능 효과",
            documentId: "leaflet-7",
            payload,
            estimatedTokens: 12,
            overflow: { policy: "split", overlapTokens: 16 },
          },
          {
            chunkId: "k2",
            text: "no document",
            documentId: null,
            payload: {},
            estimatedTokens: 3,
            overflow: TRUNCATE,
          },
          {
            chunkId: "k3",
            text: "긴 설명서 전체를 한 점으로",
            documentId: null,
            payload: {},
            estimatedTokens: 14,
            overflow: { policy: "pool", overlapTokens: 8 },
          },
        ],
        "leaflets",
      );
      const lease = await reserve();
      assert.ok(lease);
      const [k1, k2, k3] = lease.chunks as [QueuedChunk, QueuedChunk, QueuedChunk];
      assert.deepEqual(k3.overflow, { policy: "pool", overlapTokens: 8 }, "pool round-trips");
      assert.deepEqual(
        { ...k1, seq: 0, version: 0 },
        {
          seq: 0,
          version: 0,
          jobId,
          collection: "leaflets",
          chunkId: "k1",
          text: "타이레놀 | 효능 효과",
          documentId: "leaflet-7",
          payload,
          estimatedTokens: 12,
          overflow: { policy: "split", overlapTokens: 16 },
          attempts: 0,
        },
      );
      assert.equal(k2.documentId, null);
      assert.deepEqual(k2.payload, {});
      assert.deepEqual(k2.overflow, TRUNCATE, "the overflow spec round-trips");
      assert.notEqual(k1.seq, k2.seq);
      assert.ok(
        Number.isSafeInteger(k1.version) && k1.version < k2.version,
        "versions grow with enqueue order",
      );
      assert.ok(lease.id.length > 0);
      assert.ok(
        Number.isFinite(lease.expiresAt) && lease.expiresAt > 1e12,
        "expiresAt is in epoch milliseconds",
      );
    });

    it("does not hand out a leased chunk again while the lease holds", async () => {
      const jobId = await enqueue([chunk("a"), chunk("b"), chunk("c")]);
      assert.deepEqual(ids(await reserve(2)), ["a", "b"]);
      assert.deepEqual(ids(await reserve(10)), ["c"]);
      assert.equal(await reserve(10), null);
      await expectStats({ pending: 3, running: 3, dead: 0, pendingTokens: 30 });
      assert.deepEqual(await counts(jobId), {
        state: "running",
        total: 3,
        queued: 0,
        running: 3,
        stored: 0,
        unchanged: 0,
        failed: 0,
        dead: 0,
        discarded: 0,
        superseded: 0,
        cancelled: 0,
      });
    });

    it("returns the chunks of an expired lease without counting an attempt", async () => {
      const jobId = await enqueue([chunk("a"), chunk("b")]);
      const first = await reserve(10, SHORT_MS);
      assert.deepEqual(ids(first), ["a", "b"]);
      assert.equal(await reserve(10, SHORT_MS), null);
      await advance(SHORT_MS + 1);
      const second = await reserve();
      assert.ok(second && first);
      // After a crash the order among the chunks taken back is the adapter's business.
      assert.deepEqual(ids(second).sort(), ["a", "b"]);
      assert.notEqual(second.id, first.id);
      assert.deepEqual(
        second.chunks.map((c) => c.attempts),
        [0, 0],
      );
      assert.equal((await counts(jobId)).running, 2, "a reclaimed chunk is not counted twice");
      await expectStats({ pending: 2, running: 2, dead: 0, pendingTokens: 20 });
    });

    it("renew keeps a lease alive and reports a lost one", async () => {
      await enqueue([chunk("a")]);
      const lease = await reserve(10, SHORT_MS);
      assert.ok(lease);
      await advance(SHORT_MS / 2);
      assert.equal(await queue.renew(lease.id, LONG_MS), true);
      await advance(SHORT_MS);
      assert.equal(await reserve(), null, "a renewed lease must not expire at its original time");
      assert.equal(await queue.renew("no-such-lease", LONG_MS), false);
      await queue.ack(lease.id, [{ seq: lease.chunks[0]!.seq, state: "unchanged", ...MP }]);
      assert.equal(await queue.renew(lease.id, LONG_MS), false, "nothing left to renew after ack");
    });

    it("fences a stale lease: its ack, fail, release and renew change nothing", async () => {
      const jobId = await enqueue([chunk("x")]);
      const stale = await reserve(10, SHORT_MS);
      assert.ok(stale);
      const seq = stale.chunks[0]!.seq;
      await advance(SHORT_MS + 1);
      const current = await reserve();
      assert.deepEqual(ids(current), ["x"]);
      assert.ok(current);

      await queue.ack(stale.id, [{ seq, state: "stored", tokens: 5, truncatedTokens: 0, windows: 1, ...MP }]);
      await queue.fail(stale.id, { seqs: [seq], error: "stale", retryDelayMs: 0, maxAttempts: 1 });
      await queue.release(stale.id);
      assert.equal(await queue.renew(stale.id, LONG_MS), false);
      assert.deepEqual(await counts(jobId), {
        state: "running",
        total: 1,
        queued: 0,
        running: 1,
        stored: 0,
        unchanged: 0,
        failed: 0,
        dead: 0,
        discarded: 0,
        superseded: 0,
        cancelled: 0,
      });
      assert.equal(await reserve(), null, "the current lease still holds the chunk");
      await expectStats({ pending: 1, running: 1, dead: 0, pendingTokens: 10 });

      await queue.ack(current.id, [
        { seq, state: "stored", tokens: 5, truncatedTokens: 0, windows: 1, ...MP },
      ]);
      assert.equal((await counts(jobId)).state, "done");
      assert.equal((await counts(jobId)).stored, 1);
    });

    // The pipeline commits a reservation slice by slice (ingest-pipeline.ts): each ack covers part
    // of the lease, and the lease must keep holding the rest until its own slices are done.
    it("acks part of a lease: the rest stays held, renewable, failable, releasable on its own", async () => {
      const jobId = await enqueue([chunk("a"), chunk("b"), chunk("c"), chunk("d")]);
      const lease = await reserve(10, SHORT_MS);
      assert.ok(lease);
      const [a, b, c] = seqs(lease, "a", "b", "c");
      await queue.ack(lease.id, [
        { seq: a!, state: "stored", tokens: 5, truncatedTokens: 0, windows: 1, ...MP },
      ]);
      assert.deepEqual(await counts(jobId), {
        state: "running",
        total: 4,
        queued: 0,
        running: 3,
        stored: 1,
        unchanged: 0,
        failed: 0,
        dead: 0,
        discarded: 0,
        superseded: 0,
        cancelled: 0,
      });
      await expectStats({ pending: 3, running: 3, dead: 0, pendingTokens: 30 });
      assert.equal(await reserve(), null, "the unacknowledged chunks stay with the lease");
      assert.equal(await queue.renew(lease.id, LONG_MS), true, "a partly acknowledged lease is still held");
      await advance(SHORT_MS + 1);
      assert.equal(await reserve(), null, "the renewal covered the rest of the lease");

      await queue.ack(lease.id, [{ seq: b!, state: "unchanged", ...MP }]);
      await queue.fail(lease.id, {
        seqs: [c!],
        error: "slice failed",
        retryDelayMs: LONG_MS,
        maxAttempts: 5,
      });
      await expectStats({ pending: 2, running: 1, dead: 0, pendingTokens: 20 });
      assert.equal(await queue.renew(lease.id, LONG_MS), true, "d is still held");
      // A graceful stop hands back only what is left: d, with no attempt counted.
      await queue.release(lease.id);
      const next = await reserve();
      assert.deepEqual(ids(next), ["d"]);
      assert.equal(next?.chunks[0]?.attempts, 0);
      assert.deepEqual(await counts(jobId), {
        state: "running",
        total: 4,
        queued: 0,
        running: 1,
        stored: 1,
        unchanged: 1,
        failed: 1,
        dead: 0,
        discarded: 0,
        superseded: 0,
        cancelled: 0,
      });
    });

    it("a lease that lapses after part of it was acked hands back only the rest, and stays fenced", async () => {
      const jobId = await enqueue([chunk("a"), chunk("b"), chunk("c")]);
      const stale = await reserve(10, SHORT_MS);
      assert.ok(stale);
      const [a, b] = seqs(stale, "a", "b");
      await queue.ack(stale.id, [
        { seq: a!, state: "stored", tokens: 5, truncatedTokens: 0, windows: 1, ...MP },
      ]);
      await advance(SHORT_MS + 1);
      // A crash mid-reservation: only the unacknowledged chunks are done again.
      const current = await reserve();
      assert.ok(current);
      assert.deepEqual(ids(current).sort(), ["b", "c"]);
      // The stalled worker's late slice changes nothing: b belongs to the current lease now.
      await queue.ack(stale.id, [
        { seq: b!, state: "stored", tokens: 5, truncatedTokens: 0, windows: 1, ...MP },
      ]);
      assert.equal(await queue.renew(stale.id, LONG_MS), false);
      assert.equal((await counts(jobId)).stored, 1);
      assert.equal((await counts(jobId)).running, 2);
      await queue.ack(
        current.id,
        current.chunks.map((ch) => ({
          seq: ch.seq,
          state: "stored" as const,
          tokens: 5,
          truncatedTokens: 0,
          windows: 1,
          ...MP,
        })),
      );
      assert.equal((await counts(jobId)).state, "done");
      assert.equal((await counts(jobId)).stored, 3);
      await expectStats({ pending: 0, running: 0, dead: 0, pendingTokens: 0 });
    });

    it("ignores outcomes for chunks held by another lease", async () => {
      const jobId = await enqueue([chunk("a"), chunk("b")]);
      const la = await reserve(1);
      const lb = await reserve(1);
      assert.ok(la && lb);
      const [a] = seqs(la, "a");
      const [b] = seqs(lb, "b");
      await queue.ack(la.id, [
        { seq: a!, state: "unchanged", ...MP },
        { seq: b!, state: "unchanged", ...MP },
      ]);
      await queue.fail(la.id, { seqs: [b!], error: "not mine", retryDelayMs: 0, maxAttempts: 1 });
      assert.deepEqual(await counts(jobId), {
        state: "running",
        total: 2,
        queued: 0,
        running: 1,
        stored: 0,
        unchanged: 1,
        failed: 0,
        dead: 0,
        discarded: 0,
        superseded: 0,
        cancelled: 0,
      });
      await queue.ack(lb.id, [{ seq: b!, state: "unchanged", ...MP }]);
      assert.equal((await counts(jobId)).unchanged, 2);
    });

    it("ack records a superseded outcome: counted and on the receipt, nothing written", async () => {
      const jobId = await enqueue([chunk("a", 4), chunk("b", 5)]);
      const lease = await reserve();
      assert.ok(lease);
      const [a, b] = seqs(lease, "a", "b");
      await queue.ack(lease.id, [
        { seq: a!, state: "superseded", ...MP },
        { seq: b!, state: "stored", tokens: 5, truncatedTokens: 0, windows: 1, ...MP },
      ]);
      const job = await queue.getJob(jobId);
      assert.equal(job?.state, "done");
      assert.equal(job?.counts.superseded, 1);
      assert.equal(job?.counts.stored, 1);
      await expectStats({ pending: 0, running: 0, dead: 0, pendingTokens: 0 });
      assert.deepEqual(await receiptStates(jobId), [
        ["a", "superseded"],
        ["b", "stored"],
      ]);
    });

    it("ack records stored and unchanged outcomes and moves the job queued → running → done", async () => {
      const jobId = await enqueue([chunk("a", 10), chunk("b", 20), chunk("c", 30)]);
      assert.equal((await counts(jobId)).state, "queued");

      const lease = await reserve(2);
      assert.ok(lease);
      assert.equal((await counts(jobId)).state, "running");
      const [a, b] = seqs(lease, "a", "b");
      await queue.ack(lease.id, [
        { seq: a!, state: "stored", tokens: 9, truncatedTokens: 0, windows: 1, ...MP },
        { seq: b!, state: "unchanged", ...MP },
      ]);
      assert.deepEqual(await counts(jobId), {
        state: "running",
        total: 3,
        queued: 1,
        running: 0,
        stored: 1,
        unchanged: 1,
        failed: 0,
        dead: 0,
        discarded: 0,
        superseded: 0,
        cancelled: 0,
      });
      await expectStats({ pending: 1, running: 0, dead: 0, pendingTokens: 30 });

      // A repeated ack (e.g. a retried request) must not count twice.
      await queue.ack(lease.id, [
        { seq: a!, state: "stored", tokens: 9, truncatedTokens: 0, windows: 1, ...MP },
      ]);
      assert.equal((await counts(jobId)).stored, 1);

      const last = await reserve();
      assert.ok(last);
      await queue.ack(last.id, [
        { seq: last.chunks[0]!.seq, state: "stored", tokens: 30, truncatedTokens: 2, windows: 1, ...MP },
      ]);
      assert.deepEqual(await counts(jobId), {
        state: "done",
        total: 3,
        queued: 0,
        running: 0,
        stored: 2,
        unchanged: 1,
        failed: 0,
        dead: 0,
        discarded: 0,
        superseded: 0,
        cancelled: 0,
      });
      await expectStats({ pending: 0, running: 0, dead: 0, pendingTokens: 0 });
      const job = await queue.getJob(jobId);
      assert.ok(job && job.updatedAt >= job.createdAt);
    });

    it("fail with a retry delay requeues the chunk after the delay and counts the attempt", async () => {
      const jobId = await enqueue([chunk("x", 7)]);
      const lease = await reserve();
      assert.ok(lease);
      await queue.fail(lease.id, {
        seqs: seqs(lease, "x"),
        error: "store timeout",
        retryDelayMs: SHORT_MS,
        maxAttempts: 3,
      });
      assert.deepEqual(await counts(jobId), {
        state: "queued",
        total: 1,
        queued: 0,
        running: 0,
        stored: 0,
        unchanged: 0,
        failed: 1,
        dead: 0,
        discarded: 0,
        superseded: 0,
        cancelled: 0,
      });
      await expectStats({ pending: 1, running: 0, dead: 0, pendingTokens: 7 });
      assert.equal(await reserve(), null, "not reservable before the delay");
      const wait = await queue.nextAvailableInMs();
      assert.ok(wait !== null && wait > 0 && wait <= SHORT_MS, `nextAvailableInMs = ${wait}`);

      await advance(SHORT_MS);
      assert.equal(await queue.nextAvailableInMs(), 0);
      const again = await reserve();
      assert.deepEqual(ids(again), ["x"]);
      assert.equal(again?.chunks[0]?.attempts, 1);
      assert.deepEqual((await queue.getJob(jobId))?.failures, [], "a retried chunk is not a failure");
    });

    it("dead-letters a chunk at maxAttempts with its reason in the job and in stats", async () => {
      const jobId = await enqueue([chunk("x", 5), chunk("y", 6)]);
      const first = await reserve();
      assert.ok(first);
      const [x, y] = seqs(first, "x", "y");
      await queue.fail(first.id, { seqs: [x!], error: "first", retryDelayMs: 0, maxAttempts: 2 });
      await queue.ack(first.id, [
        { seq: y!, state: "stored", tokens: 6, truncatedTokens: 0, windows: 1, ...MP },
      ]);

      const second = await reserve();
      assert.deepEqual(ids(second), ["x"]);
      assert.ok(second);
      await queue.fail(second.id, { seqs: [x!], error: "model exploded", retryDelayMs: 0, maxAttempts: 2 });

      const job = await queue.getJob(jobId);
      assert.ok(job);
      assert.equal(job.state, "done");
      assert.deepEqual(job.counts, {
        total: 2,
        queued: 0,
        running: 0,
        stored: 1,
        unchanged: 0,
        failed: 0,
        dead: 1,
        discarded: 0,
        superseded: 0,
        cancelled: 0,
      });
      assert.deepEqual(job.failures, [
        { chunkId: "x", state: "dead", reason: "model exploded", attempts: 2 },
      ]);
      await expectStats({ pending: 0, running: 0, dead: 1, pendingTokens: 0 });
      assert.equal(await reserve(), null);
      assert.equal(await queue.nextAvailableInMs(), null);
    });

    it("pendingInCollection counts a collection's queued, retrying and running chunks, nothing finished", async () => {
      assert.equal(await queue.pendingInCollection("docs"), 0, "never ingested");
      await enqueue([chunk("a"), chunk("b"), chunk("c")], "docs");
      await enqueue([chunk("x")], "other");
      assert.equal(await queue.pendingInCollection("docs"), 3);
      assert.equal(await queue.pendingInCollection("other"), 1);

      const lease = await reserve(2);
      assert.ok(lease);
      assert.equal(await queue.pendingInCollection("docs"), 3, "running chunks are still pending");
      const [a, b] = seqs(lease, "a", "b");
      await queue.ack(lease.id, [
        { seq: a!, state: "stored", tokens: 1, truncatedTokens: 0, windows: 1, ...MP },
      ]);
      await queue.fail(lease.id, { seqs: [b!], error: "store down", retryDelayMs: LONG_MS, maxAttempts: 5 });
      assert.equal(await queue.pendingInCollection("docs"), 2, "a chunk waiting for its retry is pending");

      const rest = await reserve(10);
      assert.ok(rest);
      await queue.ack(
        rest.id,
        rest.chunks.map((c) => ({
          seq: c.seq,
          state: "stored" as const,
          tokens: 1,
          truncatedTokens: 0,
          windows: 1,
          ...MP,
        })),
      );
      assert.equal(await queue.pendingInCollection("docs"), 1, "only the retry is left");
      assert.equal(await queue.pendingInCollection("other"), 0);
    });

    it("dead-letters on the first failure when maxAttempts is 1", async () => {
      const jobId = await enqueue([chunk("x")]);
      const lease = await reserve();
      assert.ok(lease);
      await queue.fail(lease.id, {
        seqs: seqs(lease, "x"),
        error: "bad input",
        retryDelayMs: 0,
        maxAttempts: 1,
      });
      const job = await queue.getJob(jobId);
      assert.deepEqual(job?.failures, [{ chunkId: "x", state: "dead", reason: "bad input", attempts: 1 }]);
      await expectStats({ pending: 0, running: 0, dead: 1, pendingTokens: 0 });
    });

    it("release hands chunks back at once, in order, without counting an attempt", async () => {
      const jobId = await enqueue([chunk("a"), chunk("b"), chunk("c")]);
      const lease = await reserve(2);
      assert.ok(lease);
      await queue.release(lease.id);
      assert.deepEqual(await counts(jobId), {
        state: "queued",
        total: 3,
        queued: 3,
        running: 0,
        stored: 0,
        unchanged: 0,
        failed: 0,
        dead: 0,
        discarded: 0,
        superseded: 0,
        cancelled: 0,
      });
      await expectStats({ pending: 3, running: 0, dead: 0, pendingTokens: 30 });
      const again = await reserve();
      assert.deepEqual(ids(again), ["a", "b", "c"]);
      assert.deepEqual(
        again?.chunks.map((c) => c.attempts),
        [0, 0, 0],
      );
    });

    it("versions of one chunk id grow with enqueue order; two versions may run at once", async () => {
      await enqueue([chunk("x", 10, "v1"), chunk("y")]);
      await enqueue([chunk("x", 10, "v2")]);
      await enqueue([chunk("x", 10, "v3")], "other-collection");
      const lease = await reserve();
      assert.ok(lease);
      assert.deepEqual(
        texts(lease),
        ["v1", "text of y", "v2", "v3"],
        "the store, not the queue, orders versions",
      );
      const version = (text: string) => lease.chunks.find((c) => c.text === text)!.version;
      assert.ok(version("v1") < version("v2") && version("v2") < version("v3"));
      assert.equal(
        new Set(lease.chunks.map((c) => c.version)).size,
        4,
        "every accepted chunk has its own version",
      );
    });

    it("fair queuing: a small job of another collection runs long before a large backlog is done", async () => {
      // Three requests of 100 chunks into one collection, then 2 chunks into another.
      for (let r = 0; r < 3; r++) {
        await enqueue(
          Array.from({ length: 100 }, (_, i) => chunk(`big-${r}-${i}`, 1)),
          "backlog",
        );
      }
      await enqueue([chunk("small-0", 1), chunk("small-1", 1)], "fresh");
      const order: string[] = [];
      for (;;) {
        const lease = await reserve(16);
        if (!lease) break;
        order.push(...ids(lease));
        await queue.ack(
          lease.id,
          lease.chunks.map((c) => ({ seq: c.seq, state: "unchanged" as const, ...MP })),
        );
      }
      assert.equal(order.length, 302);
      const position = order.indexOf("small-1");
      assert.ok(
        position >= 0 && position < 100,
        `the fresh job's last chunk ran at position ${position} of 302`,
      );
      const backlog = order.filter((id) => id.startsWith("big-"));
      assert.deepEqual(
        backlog,
        [...backlog].sort((p, q) => {
          const [, pr, pi] = p.split("-").map(Number);
          const [, qr, qi] = q.split("-").map(Number);
          return pr! - qr! || pi! - qi!;
        }),
        "one collection's chunks stay in enqueue order",
      );
    });

    it("a background job (a re-embed) yields to live ingest: a fraction of the fair share per rank", async () => {
      const background = await queue.enqueue({
        collection: "rebuild",
        chunks: Array.from({ length: 300 }, (_, i) => chunk(`bg-${i}`, 1)),
        maxQueueSize: ROOMY,
        background: true,
      });
      assert.ok(background.accepted);
      await enqueue(
        Array.from({ length: 200 }, (_, i) => chunk(`live-${i}`, 1)),
        "live",
      );
      const order: string[] = [];
      for (;;) {
        const lease = await reserve(16);
        if (!lease) break;
        order.push(...ids(lease));
        await queue.ack(
          lease.id,
          lease.chunks.map((c) => ({ seq: c.seq, state: "unchanged" as const, ...MP })),
        );
      }
      assert.equal(order.length, 500, "the background job runs too");
      // Equal shares would put the live job's last chunk near position 456 (64 of each per rank);
      // an eighth of the share for the background job puts it near 232.
      const lastLive = order.lastIndexOf("live-199");
      assert.ok(lastLive < 260, `the live job's last chunk ran at position ${lastLive} of 500`);
      const backgroundOrder = order.filter((id) => id.startsWith("bg-"));
      assert.deepEqual(
        backgroundOrder,
        Array.from({ length: 300 }, (_, i) => `bg-${i}`),
      );
    });

    it("nextAvailableInMs: null when nothing is queued, 0 when work is ready, else the shortest wait", async () => {
      assert.equal(await queue.nextAvailableInMs(), null);
      await enqueue([chunk("a"), chunk("b")]);
      assert.equal(await queue.nextAvailableInMs(), 0);
      const lease = await reserve();
      assert.ok(lease);
      assert.equal(await queue.nextAvailableInMs(), null, "running chunks are not waiting");

      const [a, b] = seqs(lease, "a", "b");
      await queue.fail(lease.id, { seqs: [a!], error: "e", retryDelayMs: 2 * SHORT_MS, maxAttempts: 9 });
      await queue.fail(lease.id, { seqs: [b!], error: "e", retryDelayMs: SHORT_MS, maxAttempts: 9 });
      const wait = await queue.nextAvailableInMs();
      assert.ok(wait !== null && wait > 0 && wait <= SHORT_MS, `nextAvailableInMs = ${wait}`);
      await advance(SHORT_MS);
      assert.equal(await queue.nextAvailableInMs(), 0);
      assert.deepEqual(ids(await reserve()), ["b"]);
      const rest = await queue.nextAvailableInMs();
      assert.ok(rest !== null && rest > 0 && rest <= SHORT_MS, `nextAvailableInMs = ${rest}`);
    });

    it("stats stay exact through every transition", async () => {
      await enqueue([chunk("a", 1), chunk("b", 2), chunk("c", 3), chunk("d", 4)]);
      await expectStats({ pending: 4, running: 0, dead: 0, pendingTokens: 10 }, "after enqueue");
      const lease = await reserve(3);
      assert.ok(lease);
      await expectStats({ pending: 4, running: 3, dead: 0, pendingTokens: 10 }, "after reserve");
      const [a, b, c] = seqs(lease, "a", "b", "c");
      await queue.ack(lease.id, [
        { seq: a!, state: "stored", tokens: 1, truncatedTokens: 0, windows: 1, ...MP },
      ]);
      await expectStats({ pending: 3, running: 2, dead: 0, pendingTokens: 9 }, "after ack");
      await queue.fail(lease.id, { seqs: [b!], error: "retry", retryDelayMs: 0, maxAttempts: 3 });
      await expectStats({ pending: 3, running: 1, dead: 0, pendingTokens: 9 }, "after retry");
      await queue.fail(lease.id, { seqs: [c!], error: "dead", retryDelayMs: 0, maxAttempts: 1 });
      await expectStats({ pending: 2, running: 0, dead: 1, pendingTokens: 6 }, "after dead letter");
      const next = await reserve(10, SHORT_MS);
      assert.deepEqual(ids(next).sort(), ["b", "d"], "a retry's place among waiting chunks is the adapter's");
      await advance(SHORT_MS + 1);
      const reclaimed = await reserve(1);
      assert.equal(ids(reclaimed).length, 1);
      await expectStats({ pending: 2, running: 1, dead: 1, pendingTokens: 6 }, "after expiry + reserve");
      assert.ok(reclaimed);
      await queue.release(reclaimed.id);
      await expectStats({ pending: 2, running: 0, dead: 1, pendingTokens: 6 }, "after release");
    });

    /** Enqueues the chunks and dead-letters them all (maxAttempts 1); returns job id and seqs. */
    async function deadLetters(
      chunkIds: string[],
      reason = "broken",
      collection = "docs",
    ): Promise<{ jobId: string; seqs: number[] }> {
      const jobId = await enqueue(
        chunkIds.map((id) => chunk(id)),
        collection,
      );
      const lease = await reserve();
      assert.ok(lease);
      const all = seqs(lease, ...chunkIds);
      await queue.fail(lease.id, { seqs: all, error: reason, retryDelayMs: 0, maxAttempts: 1 });
      return { jobId, seqs: all };
    }

    async function receiptStates(jobId: string): Promise<Array<[string, string]>> {
      const page = await queue.listChunks(jobId, { limit: 1000 });
      return page.items.map((r) => [r.chunkId, r.state]);
    }

    it("receipts: queued with nulls after enqueue, then the details of each outcome", async () => {
      const jobId = await enqueue([
        chunk("a", 10),
        chunk("b", 20),
        { ...chunk("c", 30), overflow: { policy: "split", overlapTokens: 8 } },
      ]);
      const first = await queue.listChunks(jobId, { limit: 100 });
      assert.equal(first.nextCursor, null);
      assert.deepEqual(first.items.map(receiptView), [
        { chunkId: "a", ...QUEUED_RECEIPT },
        { chunkId: "b", ...QUEUED_RECEIPT },
        { chunkId: "c", ...QUEUED_RECEIPT, overflow: "split" },
      ]);
      const firstSeqs = first.items.map((r) => r.seq);
      assert.ok(firstSeqs[0]! < firstSeqs[1]! && firstSeqs[1]! < firstSeqs[2]!, "seq order");

      const lease = await reserve();
      assert.ok(lease);
      assert.deepEqual(firstSeqs, seqs(lease, "a", "b", "c"), "receipt seq is the queue seq");
      assert.deepEqual(await receiptStates(jobId), [
        ["a", "running"],
        ["b", "running"],
        ["c", "running"],
      ]);
      const [a, b, c] = seqs(lease, "a", "b", "c");
      await queue.ack(lease.id, [
        { seq: a!, state: "stored", tokens: 12, truncatedTokens: 2, windows: 1, ...MP },
        { seq: b!, state: "unchanged", ...MP },
        { seq: c!, state: "stored", tokens: 40, truncatedTokens: 0, windows: 3, ...MP },
      ]);
      const done = await queue.listChunks(jobId, { limit: 100 });
      assert.deepEqual(done.items.map(receiptView), [
        {
          chunkId: "a",
          state: "stored",
          attempts: 0,
          tokens: 12,
          truncatedTokens: 2,
          windows: 1,
          overflow: "truncate",
          ...MP,
          lastError: null,
        },
        {
          chunkId: "b",
          state: "unchanged",
          attempts: 0,
          tokens: null,
          truncatedTokens: 0,
          windows: null,
          overflow: "truncate",
          ...MP,
          lastError: null,
        },
        {
          chunkId: "c",
          state: "stored",
          attempts: 0,
          tokens: 40,
          truncatedTokens: 0,
          windows: 3,
          overflow: "split",
          ...MP,
          lastError: null,
        },
      ]);
    });

    it("receipts: a failed attempt awaiting retry is 'failed', a dead letter 'dead'; the filter agrees", async () => {
      const jobId = await enqueue([chunk("a"), chunk("b"), chunk("c"), chunk("d")]);
      const lease = await reserve(2);
      assert.ok(lease);
      const [a, b] = seqs(lease, "a", "b");
      await queue.fail(lease.id, { seqs: [a!], error: "flaky", retryDelayMs: SHORT_MS, maxAttempts: 3 });
      await queue.fail(lease.id, { seqs: [b!], error: "broken", retryDelayMs: 0, maxAttempts: 1 });

      const page = await queue.listChunks(jobId, { limit: 10 });
      assert.deepEqual(page.items.map(receiptView), [
        { chunkId: "a", ...QUEUED_RECEIPT, state: "failed", attempts: 1, lastError: "flaky" },
        { chunkId: "b", ...QUEUED_RECEIPT, state: "dead", attempts: 1, lastError: "broken" },
        { chunkId: "c", ...QUEUED_RECEIPT },
        { chunkId: "d", ...QUEUED_RECEIPT },
      ]);
      const only = async (state: ChunkReceipt["state"]) =>
        (await queue.listChunks(jobId, { state, limit: 10 })).items.map((r) => r.chunkId);
      assert.deepEqual(await only("failed"), ["a"]);
      assert.deepEqual(await only("queued"), ["c", "d"]);
      assert.deepEqual(await only("dead"), ["b"]);
      assert.deepEqual(await only("running"), []);
      assert.deepEqual(await only("stored"), []);
      // The job's counts are the same partition as the receipt filters.
      const counts = (await queue.getJob(jobId))?.counts;
      assert.deepEqual(counts, {
        total: 4,
        queued: 2,
        running: 0,
        stored: 0,
        unchanged: 0,
        failed: 1,
        dead: 1,
        discarded: 0,
        superseded: 0,
        cancelled: 0,
      });

      await reserve(1, LONG_MS);
      assert.deepEqual(await only("running"), ["c"]);
      assert.deepEqual(await only("queued"), ["d"]);
    });

    it("receipts: pages of limit 2 over 5 chunks are 2, 2, 1 with cursors and no overlap", async () => {
      const jobId = await enqueue(["a", "b", "c", "d", "e"].map((id) => chunk(id)));
      await enqueue([chunk("other")]);
      const p1 = await queue.listChunks(jobId, { limit: 2 });
      assert.deepEqual(
        p1.items.map((r) => r.chunkId),
        ["a", "b"],
      );
      assert.equal(p1.nextCursor, p1.items[1]!.seq);
      const p2 = await queue.listChunks(jobId, { limit: 2, after: p1.nextCursor! });
      assert.deepEqual(
        p2.items.map((r) => r.chunkId),
        ["c", "d"],
      );
      assert.equal(p2.nextCursor, p2.items[1]!.seq);
      const p3 = await queue.listChunks(jobId, { limit: 2, after: p2.nextCursor! });
      assert.deepEqual(
        p3.items.map((r) => r.chunkId),
        ["e"],
      );
      assert.equal(p3.nextCursor, null);

      const exact = await queue.listChunks(jobId, { limit: 5 });
      assert.equal(exact.items.length, 5);
      assert.equal(exact.nextCursor, null, "no next page when the last page is exactly full");
      const filtered = await queue.listChunks(jobId, { state: "queued", limit: 3 });
      assert.equal(filtered.items.length, 3);
      assert.equal(filtered.nextCursor, filtered.items[2]!.seq);
    });

    it("receipts of an unknown job are an empty page", async () => {
      await enqueue([chunk("a")]);
      assert.deepEqual(await queue.listChunks("00000000-0000-4000-8000-000000000000", { limit: 10 }), {
        items: [],
        nextCursor: null,
      });
    });

    it("lists dead letters across jobs and per job, in seq order, paged", async () => {
      const one = await deadLetters(["x", "y"], "bad input");
      await enqueue([chunk("alive")]);
      const two = await deadLetters(["z"], "too long", "other");

      const all = await queue.listDeadLetters({ limit: 100 });
      assert.equal(all.nextCursor, null);
      assert.deepEqual(
        all.items.map(({ deadAt, ...rest }) => {
          assert.equal(new Date(deadAt).toISOString(), deadAt);
          return rest;
        }),
        [
          {
            seq: one.seqs[0],
            jobId: one.jobId,
            collection: "docs",
            chunkId: "x",
            reason: "bad input",
            attempts: 1,
          },
          {
            seq: one.seqs[1],
            jobId: one.jobId,
            collection: "docs",
            chunkId: "y",
            reason: "bad input",
            attempts: 1,
          },
          {
            seq: two.seqs[0],
            jobId: two.jobId,
            collection: "other",
            chunkId: "z",
            reason: "too long",
            attempts: 1,
          },
        ],
      );
      const ofTwo = await queue.listDeadLetters({ jobId: two.jobId, limit: 100 });
      assert.deepEqual(
        ofTwo.items.map((d) => d.chunkId),
        ["z"],
      );
      const p1 = await queue.listDeadLetters({ limit: 2 });
      assert.deepEqual(
        p1.items.map((d) => d.chunkId),
        ["x", "y"],
      );
      assert.equal(p1.nextCursor, one.seqs[1]);
      const p2 = await queue.listDeadLetters({ limit: 2, after: p1.nextCursor! });
      assert.deepEqual(
        p2.items.map((d) => d.chunkId),
        ["z"],
      );
      assert.equal(p2.nextCursor, null);
      assert.deepEqual(
        await queue.listDeadLetters({ jobId: "00000000-0000-4000-8000-000000000000", limit: 5 }),
        {
          items: [],
          nextCursor: null,
        },
      );
    });

    it("replays dead letters by seq: queued again with attempts 0, job and stats updated", async () => {
      const jobId = await enqueue([chunk("x", 5), chunk("y", 6)]);
      const lease = await reserve();
      assert.ok(lease);
      const [x, y] = seqs(lease, "x", "y");
      await queue.fail(lease.id, { seqs: [x!], error: "broken", retryDelayMs: 0, maxAttempts: 1 });
      await queue.ack(lease.id, [
        { seq: y!, state: "stored", tokens: 6, truncatedTokens: 0, windows: 1, ...MP },
      ]);
      assert.equal((await counts(jobId)).state, "done");
      await expectStats({ pending: 0, running: 0, dead: 1, pendingTokens: 0 });

      assert.equal(await queue.replayDeadLetters({ seqs: [x!, y!] }), 1, "only the dead one is replayed");
      const job = await counts(jobId);
      assert.notEqual(job.state, "done");
      assert.deepEqual(
        { ...job, state: undefined },
        {
          state: undefined,
          total: 2,
          queued: 1,
          running: 0,
          stored: 1,
          unchanged: 0,
          failed: 0,
          dead: 0,
          discarded: 0,
          superseded: 0,
          cancelled: 0,
        },
      );
      assert.deepEqual((await queue.getJob(jobId))?.failures, []);
      await expectStats({ pending: 1, running: 0, dead: 0, pendingTokens: 5 });
      assert.deepEqual((await queue.listDeadLetters({ limit: 10 })).items, []);
      const [receipt] = (await queue.listChunks(jobId, { state: "queued", limit: 10 })).items;
      assert.equal(receipt?.chunkId, "x");
      assert.equal(receipt?.lastError, null);

      assert.equal(await queue.nextAvailableInMs(), 0);
      const again = await reserve();
      assert.deepEqual(
        again?.chunks.map((c) => [c.chunkId, c.attempts]),
        [["x", 0]],
      );
      assert.equal((await counts(jobId)).state, "running");
      assert.ok(again);
      await queue.ack(again.id, [
        { seq: x!, state: "stored", tokens: 5, truncatedTokens: 0, windows: 1, ...MP },
      ]);
      assert.equal((await counts(jobId)).state, "done");
      assert.equal(await queue.replayDeadLetters({ seqs: [x!] }), 0, "a stored chunk is not replayed");
    });

    it("replays dead letters by job and all of them", async () => {
      const one = await deadLetters(["a", "b"]);
      const two = await deadLetters(["c"]);
      const three = await deadLetters(["d"]);
      await expectStats({ pending: 0, running: 0, dead: 4, pendingTokens: 0 });

      assert.equal(await queue.replayDeadLetters({ jobId: one.jobId }), 2);
      assert.deepEqual(await counts(one.jobId), {
        state: "queued",
        total: 2,
        queued: 2,
        running: 0,
        stored: 0,
        unchanged: 0,
        failed: 0,
        dead: 0,
        discarded: 0,
        superseded: 0,
        cancelled: 0,
      });
      assert.equal((await counts(two.jobId)).dead, 1, "other jobs keep their dead letters");
      await expectStats({ pending: 2, running: 0, dead: 2, pendingTokens: 20 });

      assert.equal(await queue.replayDeadLetters({ all: true }), 2);
      assert.equal((await counts(two.jobId)).queued, 1);
      assert.equal((await counts(three.jobId)).queued, 1);
      await expectStats({ pending: 4, running: 0, dead: 0, pendingTokens: 40 });
      assert.equal(await queue.replayDeadLetters({ all: true }), 0);
      assert.deepEqual(ids(await reserve()), ["a", "b", "c", "d"]);
    });

    it("discards dead letters: counted, no longer listed, never replayed", async () => {
      const one = await deadLetters(["a", "b"]);
      const two = await deadLetters(["c"]);
      const three = await deadLetters(["d"]);

      assert.equal(await queue.discardDeadLetters({ seqs: [one.seqs[0]!] }), 1);
      assert.deepEqual(await counts(one.jobId), {
        state: "done",
        total: 2,
        queued: 0,
        running: 0,
        stored: 0,
        unchanged: 0,
        failed: 0,
        dead: 1,
        discarded: 1,
        superseded: 0,
        cancelled: 0,
      });
      await expectStats({ pending: 0, running: 0, dead: 3, pendingTokens: 0 });
      assert.deepEqual(
        (await queue.listDeadLetters({ limit: 10 })).items.map((d) => d.chunkId),
        ["b", "c", "d"],
      );
      assert.deepEqual(
        (await queue.getJob(one.jobId))?.failures.map((f) => f.chunkId),
        ["b"],
      );
      assert.deepEqual(await receiptStates(one.jobId), [
        ["a", "discarded"],
        ["b", "dead"],
      ]);
      assert.equal(await queue.replayDeadLetters({ seqs: [one.seqs[0]!] }), 0);
      assert.equal(await queue.discardDeadLetters({ seqs: [one.seqs[0]!] }), 0);

      assert.equal(await queue.discardDeadLetters({ jobId: two.jobId }), 1);
      assert.equal((await counts(two.jobId)).discarded, 1);
      assert.equal(await queue.discardDeadLetters({ all: true }), 2);
      assert.equal((await counts(three.jobId)).discarded, 1);
      await expectStats({ pending: 0, running: 0, dead: 0, pendingTokens: 0 });
      assert.deepEqual((await queue.listDeadLetters({ limit: 10 })).items, []);
      assert.equal(await queue.replayDeadLetters({ all: true }), 0, "discarded is terminal");
      assert.equal(await reserve(), null);
    });

    it("replay and discard of chunks that are not dead change nothing", async () => {
      const jobId = await enqueue([chunk("q"), chunk("r"), chunk("s"), chunk("t")]);
      const lease = await reserve(3);
      assert.ok(lease);
      const [q, r, s] = seqs(lease, "q", "r", "s");
      await queue.ack(lease.id, [
        { seq: q!, state: "stored", tokens: 1, truncatedTokens: 0, windows: 1, ...MP },
      ]);
      await queue.fail(lease.id, { seqs: [r!], error: "flaky", retryDelayMs: 0, maxAttempts: 5 });
      const before = {
        counts: await counts(jobId),
        stats: await queue.stats(),
        receipts: await receiptStates(jobId),
      };
      const all = [q!, r!, s!, 987_654_321];
      assert.equal(await queue.replayDeadLetters({ seqs: all }), 0);
      assert.equal(await queue.discardDeadLetters({ seqs: all }), 0);
      assert.equal(await queue.replayDeadLetters({ jobId }), 0);
      assert.equal(await queue.discardDeadLetters({ jobId }), 0);
      assert.equal(await queue.replayDeadLetters({ all: true }), 0);
      assert.equal(await queue.discardDeadLetters({ all: true }), 0);
      assert.deepEqual(
        { counts: await counts(jobId), stats: await queue.stats(), receipts: await receiptStates(jobId) },
        before,
      );
      assert.deepEqual(before.receipts, [
        ["q", "stored"],
        ["r", "failed"],
        ["s", "running"],
        ["t", "queued"],
      ]);
    });

    it("dead-letters a chunk whose lease ran out maxStalls times; release does not count", async () => {
      const stalling = await factory({ maxStalls: 2 });
      try {
        const q = stalling.queue;
        const result = await q.enqueue({
          collection: "docs",
          chunks: [chunk("x", 7), chunk("y", 3)],
          maxQueueSize: ROOMY,
        });
        assert.ok(result.accepted);
        const take = (maxChunks: number, leaseMs: number) =>
          q.reserve({ maxChunks, maxTokens: ROOMY, leaseMs });

        // y is released (graceful) more often than maxStalls allows stalls: it never dies of it.
        for (let i = 0; i < 3; i++) {
          const lease = await take(2, LONG_MS);
          assert.deepEqual(ids(lease), ["x", "y"]);
          await q.release(lease!.id);
        }
        const first = await take(1, SHORT_MS);
        assert.deepEqual(ids(first), ["x"]);
        await stalling.clock.advance(SHORT_MS + 1);
        const second = await take(1, SHORT_MS);
        assert.deepEqual(ids(second), ["x"], "the first stall requeues");
        assert.equal(second?.chunks[0]?.attempts, 0, "a stall is not a failed attempt");
        await stalling.clock.advance(SHORT_MS + 1);

        const third = await take(10, LONG_MS);
        assert.deepEqual(ids(third), ["y"], "the second stall dead-letters x");
        assert.deepEqual(await q.stats(), { pending: 1, running: 1, dead: 1, pendingTokens: 3 });
        const job = await q.getJob(result.jobId);
        assert.equal(job?.counts.dead, 1);
        assert.deepEqual(
          job?.failures.map((f) => [f.chunkId, f.reason]),
          [["x", STALL_REASON(2)]],
        );
        const dead = await q.listDeadLetters({ limit: 10 });
        assert.deepEqual(
          dead.items.map((d) => [d.chunkId, d.reason]),
          [["x", STALL_REASON(2)]],
        );

        assert.equal(await q.replayDeadLetters({ seqs: [dead.items[0]!.seq] }), 1);
        assert.deepEqual(ids(await take(10, LONG_MS)), ["x"], "a replayed stall victim runs again");
      } finally {
        await stalling.queue.close();
        await stalling.cleanup();
      }
    });

    it("lists jobs with work left first, newest first, then finished ones; filters and pages", async () => {
      const done1 = await enqueue([chunk("d1")], "a");
      await advance(5);
      const done2 = await enqueue([chunk("d2")], "b");
      const lease = await reserve(2);
      assert.ok(lease);
      await queue.ack(
        lease.id,
        lease.chunks.map((c) => ({ seq: c.seq, state: "unchanged" as const, ...MP })),
      );
      await advance(5);
      const queuedA = await enqueue([chunk("q1")], "a");
      await advance(5);
      const running = await enqueue([chunk("r1"), chunk("r2")], "b");
      const partial = await reserve(1);
      assert.deepEqual(ids(partial), ["q1"], "the oldest waiting chunk runs first");
      await advance(5);
      const queuedB = await enqueue([chunk("q2")], "b");

      const all = await queue.listJobs({ limit: 10 });
      assert.deepEqual(
        all.items.map((j) => [j.id, j.state]),
        [
          [queuedB, "queued"],
          [running, "queued"],
          [queuedA, "running"],
          [done2, "done"],
          [done1, "done"],
        ],
      );
      assert.equal(all.nextCursor, null);
      assert.deepEqual(all.items[2]?.counts.running, 1);

      const onlyDone = await queue.listJobs({ state: "done", limit: 10 });
      assert.deepEqual(
        onlyDone.items.map((j) => j.id),
        [done2, done1],
      );
      const onlyRunning = await queue.listJobs({ state: "running", limit: 10 });
      assert.deepEqual(
        onlyRunning.items.map((j) => j.id),
        [queuedA],
      );
      const ofB = await queue.listJobs({ collection: "b", limit: 10 });
      assert.deepEqual(
        ofB.items.map((j) => j.id),
        [queuedB, running, done2],
      );

      const seen: string[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 10; page++) {
        const result = await queue.listJobs({ limit: 2, ...(cursor ? { cursor } : {}) });
        seen.push(...result.items.map((j) => j.id));
        if (!result.nextCursor) break;
        cursor = result.nextCursor;
      }
      assert.deepEqual(
        seen,
        all.items.map((j) => j.id),
        "pages of 2 list every job once, in order",
      );
    });

    it("cancels a job's chunks that have not started; running ones finish", async () => {
      const jobId = await enqueue([chunk("a", 5), chunk("b", 6), chunk("c", 7), chunk("d", 8)]);
      const other = await enqueue([chunk("x")]);
      const lease = await reserve(2);
      assert.deepEqual(ids(lease), ["a", "b"]);
      const [b] = seqs(lease!, "b");
      await queue.fail(lease!.id, { seqs: [b!], error: "flaky", retryDelayMs: SHORT_MS, maxAttempts: 5 });

      assert.equal(await queue.cancelJob(jobId), 3, "b waiting for its retry, c and d");
      assert.equal(await queue.cancelJob("00000000-0000-4000-8000-000000000000"), null);
      assert.deepEqual(await receiptStates(jobId), [
        ["a", "running"],
        ["b", "cancelled"],
        ["c", "cancelled"],
        ["d", "cancelled"],
      ]);
      await expectStats({ pending: 2, running: 1, dead: 0, pendingTokens: 15 });
      await advance(SHORT_MS);
      assert.deepEqual(ids(await reserve()), ["x"], "cancelled chunks never run; other jobs do");
      const [a] = seqs(lease!, "a");
      await queue.ack(lease!.id, [
        { seq: a!, state: "stored", tokens: 5, truncatedTokens: 0, windows: 1, ...MP },
      ]);
      const job = await queue.getJob(jobId);
      assert.equal(job?.state, "done");
      assert.deepEqual([job?.counts.stored, job?.counts.cancelled], [1, 3]);
      assert.equal(await queue.cancelJob(jobId), 0, "nothing left to cancel");
      assert.ok(await queue.getJob(other));
    });

    it("document floors: a replacement raises them to its first version, a delete to a fresh one; they only grow", async () => {
      assert.deepEqual(await queue.documentFloors("docs", ["A"]), new Map());
      const plain = await enqueue([{ ...chunk("a1"), documentId: "A" }]);
      assert.deepEqual(await queue.documentFloors("docs", ["A"]), new Map(), "a plain ingest sets no floor");
      const replacement = await queue.enqueue({
        collection: "docs",
        chunks: [
          { ...chunk("a2"), documentId: "A" },
          { ...chunk("b1"), documentId: "B" },
        ],
        maxQueueSize: ROOMY,
        replaceDocuments: ["A", "B"],
      });
      assert.ok(replacement.accepted);
      const lease = await reserve();
      assert.ok(lease);
      const version = (id: string) => lease.chunks.find((c) => c.chunkId === id)!.version;
      const floors = await queue.documentFloors("docs", ["A", "B", "C"]);
      assert.deepEqual(floors.get("A"), { version: version("a2"), kind: "replace" });
      assert.deepEqual(floors.get("B"), { version: version("a2"), kind: "replace" });
      assert.equal(floors.has("C"), false);
      assert.ok(version("a1") < version("a2"), "the plain ingest's chunk is below the floor");
      assert.deepEqual(await queue.documentFloors("other", ["A"]), new Map(), "floors are per collection");

      const deleted = await queue.deleteDocument("docs", "A");
      assert.equal(deleted.kind, "delete");
      assert.ok(deleted.version > version("b1"), "a delete's version is newer than every accepted chunk");
      assert.deepEqual((await queue.documentFloors("docs", ["A"])).get("A"), deleted);
      const later = await enqueue([{ ...chunk("a3"), documentId: "A" }]);
      const next = await reserve();
      assert.ok(
        next && next.chunks[0]!.version > deleted.version,
        "chunks accepted after a delete are above it",
      );
      assert.ok(plain && later);
    });

    it("lists a collection's documents in id order, paged, until they are deleted", async () => {
      await enqueue([
        { ...chunk("x1"), documentId: "b" },
        { ...chunk("x2"), documentId: "a" },
        { ...chunk("x3"), documentId: null },
      ]);
      await enqueue([{ ...chunk("y1"), documentId: "c" }]);
      await enqueue([{ ...chunk("z1"), documentId: "zz" }], "other");
      assert.deepEqual(await queue.listDocuments("docs", { limit: 10 }), {
        documentIds: ["a", "b", "c"],
        nextCursor: null,
      });
      const first = await queue.listDocuments("docs", { limit: 2 });
      assert.deepEqual(first, { documentIds: ["a", "b"], nextCursor: "b" });
      assert.deepEqual(await queue.listDocuments("docs", { after: "b", limit: 2 }), {
        documentIds: ["c"],
        nextCursor: null,
      });
      await queue.deleteDocument("docs", "b");
      assert.deepEqual((await queue.listDocuments("docs", { limit: 10 })).documentIds, ["a", "c"]);
      await enqueue([{ ...chunk("x1"), documentId: "b" }]);
      assert.deepEqual(
        (await queue.listDocuments("docs", { limit: 10 })).documentIds,
        ["a", "b", "c"],
        "a document ingested again after its delete is listed again",
      );
    });

    it("a done replacement without dead letters waits for finalization once; its job shows the result", async () => {
      const result = await queue.enqueue({
        collection: "docs",
        chunks: [
          { ...chunk("r1"), documentId: "D" },
          { ...chunk("r2"), documentId: "D" },
        ],
        maxQueueSize: ROOMY,
        replaceDocuments: ["D"],
      });
      assert.ok(result.accepted);
      assert.deepEqual(await queue.pendingFinalizations(10), [], "not before it is done");
      const lease = await reserve();
      assert.ok(lease);
      const [r1, r2] = seqs(lease, "r1", "r2");
      await queue.ack(lease.id, [
        { seq: r1!, state: "stored", tokens: 1, truncatedTokens: 0, windows: 1, ...MP },
      ]);
      await queue.fail(lease.id, { seqs: [r2!], error: "broken", retryDelayMs: 0, maxAttempts: 1 });
      assert.deepEqual(await queue.pendingFinalizations(10), [], "not while part of it is a dead letter");
      assert.equal(await queue.discardDeadLetters({ jobId: result.jobId }), 1);
      const pending = await queue.pendingFinalizations(10);
      assert.deepEqual(pending, [
        { jobId: result.jobId, collection: "docs", documents: ["D"], version: lease.chunks[0]!.version },
      ]);
      assert.deepEqual((await queue.getJob(result.jobId))?.replace, {
        documents: ["D"],
        finalized: false,
        deletedPoints: 0,
        deletedChunkIds: [],
      });
      await queue.completeFinalization(result.jobId, { deletedPoints: 3, deletedChunkIds: ["old1", "old2"] });
      await queue.completeFinalization(result.jobId, { deletedPoints: 9, deletedChunkIds: [] });
      assert.deepEqual(await queue.pendingFinalizations(10), []);
      assert.deepEqual((await queue.getJob(result.jobId))?.replace, {
        documents: ["D"],
        finalized: true,
        deletedPoints: 3,
        deletedChunkIds: ["old1", "old2"],
      });
      const plain = await enqueue([chunk("p")]);
      assert.equal((await queue.getJob(plain))?.replace, null);
    });

    it("retention: finished jobs and their receipts go after jobRetention, dead letters after theirs", async () => {
      const short = await factory({ jobRetentionMs: SHORT_MS, deadLetterRetentionMs: 3 * SHORT_MS });
      try {
        const q = short.queue;
        const add = async (chunkIds: string[]) => {
          const result = await q.enqueue({
            collection: "docs",
            chunks: chunkIds.map((id) => chunk(id)),
            maxQueueSize: ROOMY,
          });
          assert.ok(result.accepted);
          return result.jobId;
        };
        const finished = await add(["a", "b"]);
        const withDead = await add(["c"]);
        const pending = await add(["d"]);
        const lease = await q.reserve({ maxChunks: 3, maxTokens: ROOMY, leaseMs: LONG_MS });
        assert.deepEqual(ids(lease), ["a", "b", "c"]);
        const [a, b, c] = ["a", "b", "c"].map((id) => lease!.chunks.find((x) => x.chunkId === id)!.seq);
        await q.ack(lease!.id, [
          { seq: a!, state: "stored", tokens: 1, truncatedTokens: 0, windows: 1, ...MP },
          { seq: b!, state: "unchanged", ...MP },
        ]);
        await q.fail(lease!.id, { seqs: [c!], error: "broken", retryDelayMs: 0, maxAttempts: 1 });

        await short.clock.advance(2 * SHORT_MS);
        await q.maintain();
        assert.equal(await q.getJob(finished), null, "a finished job past retention is gone");
        assert.deepEqual(await q.listChunks(finished, { limit: 10 }), { items: [], nextCursor: null });
        assert.ok(await q.getJob(withDead), "a job with a dead letter stays while the dead letter does");
        assert.ok(await q.getJob(pending), "a job with work left never expires");
        assert.equal((await q.listDeadLetters({ limit: 10 })).items.length, 1);

        await short.clock.advance(2 * SHORT_MS);
        const result = await q.maintain();
        assert.equal(result.expiredDeadLetters, 1);
        assert.deepEqual((await q.listDeadLetters({ limit: 10 })).items, []);
        assert.equal(
          await q.replayDeadLetters({ all: true }),
          0,
          "an expired dead letter cannot be replayed",
        );
        assert.deepEqual(await q.stats(), { pending: 1, running: 0, dead: 0, pendingTokens: 10 });
        const expired = await q.getJob(withDead);
        assert.ok(expired === null || expired.counts.discarded === 1, "expired dead letters are discarded");
        assert.ok(await q.getJob(pending));
      } finally {
        await short.queue.close();
        await short.cleanup();
      }
    });
  });
}
