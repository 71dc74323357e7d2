import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import { ProcessingError } from "../../src/domain/errors.js";
import type { NewChunk } from "../../src/domain/types.js";
import type { Embedder, EmbedResult } from "../../src/embedder/embedder.js";
import { ThroughputMeter } from "../../src/observability/throughput-meter.js";
import { SequentialCommitter } from "../../src/pipeline/batch-committer.js";
import { IngestPipeline, type PipelineOptions } from "../../src/pipeline/ingest-pipeline.js";
import { sliceByTokens } from "../../src/pipeline/progress-slices.js";
import type { ChunkOutcome, JobQueue } from "../../src/queue/job-queue.js";
import { SqliteJobQueue } from "../../src/queue/sqlite/sqlite-job-queue.js";
import { openSqliteDatabase, type SqliteDatabase } from "../../src/storage/sqlite-database.js";
import { fakeEmbedder, memoryStore } from "../helpers/in-memory-backends.js";

/**
 * The pipeline over a real (SQLite, in-memory) queue, the in-memory store and an embedder whose
 * calls the test finishes one at a time: what is stored, acknowledged and measured while a
 * reservation is still being embedded.
 */

interface EmbedCall {
  texts: string[];
  finish(): void;
  fail(error: unknown): void;
}

/** The fake embedder's vectors, released call by call by the test. */
function gatedEmbedder(): Embedder & { calls: EmbedCall[] } {
  const inner = fakeEmbedder();
  const calls: EmbedCall[] = [];
  return Object.assign(Object.create(inner) as Embedder, {
    calls,
    embed(texts: string[]): Promise<EmbedResult> {
      return new Promise<EmbedResult>((resolve, reject) => {
        calls.push({
          texts,
          finish: () => resolve(inner.embed(texts, "passage")),
          fail: reject,
        });
      });
    },
  });
}

/** A queue that notes every ack (lease, seqs), in order. */
function noting(queue: JobQueue, acks: Array<{ leaseId: string; seqs: number[] }>): JobQueue {
  return new Proxy(queue, {
    get(target, property, receiver) {
      if (property === "ack") {
        return async (leaseId: string, outcomes: ChunkOutcome[]) => {
          acks.push({ leaseId, seqs: outcomes.map((o) => o.seq) });
          return target.ack(leaseId, outcomes);
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** Chunk `c<i>` has text of `tokens` × 4 characters (the fake embedder counts 4 characters a token). */
function chunk(i: number, tokens: number): NewChunk {
  return {
    chunkId: `c${i}`,
    text: `${String.fromCharCode(97 + (i % 26))}`.repeat(tokens * 4),
    documentId: null,
    payload: {},
    estimatedTokens: tokens,
    overflow: { policy: "truncate", overlapTokens: 0 },
  };
}

async function until(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 2_000; i++) {
    if (await condition()) return;
    await sleep(5);
  }
  assert.fail(`timed out waiting for ${what}`);
}

const OPTIONS: PipelineOptions = {
  reserveMaxChunks: 100,
  reserveMaxTokens: 100_000,
  leaseMs: 60_000,
  maxParallelTasks: 1,
  maxRate: 0,
  maxAttempts: 3,
  retryBaseMs: 60_000,
  retryMaxMs: 60_000,
  distance: "Cosine",
  idlePollMs: 50,
  sliceMaxTokens: 30,
};

describe("IngestPipeline: a reservation is committed slice by slice", () => {
  let db: SqliteDatabase;
  let queue: SqliteJobQueue;
  let embedder: ReturnType<typeof gatedEmbedder>;
  let throughput: ThroughputMeter;
  let acks: Array<{ leaseId: string; seqs: number[] }>;
  let pipeline: IngestPipeline;
  let store: ReturnType<typeof memoryStore>;

  beforeEach(async () => {
    db = openSqliteDatabase(":memory:");
    queue = new SqliteJobQueue(db);
    embedder = gatedEmbedder();
    await embedder.load();
    throughput = new ThroughputMeter();
    acks = [];
  });

  afterEach(async () => {
    // Whatever a test left waiting finishes, so stop() returns at once.
    const finishAll = setInterval(() => {
      for (const call of embedder.calls) call.finish();
    }, 5);
    await pipeline.stop(1_000);
    clearInterval(finishAll);
    db.close();
  });

  function start(options: Partial<PipelineOptions> = {}): void {
    store = memoryStore();
    const observed = noting(queue, acks);
    pipeline = new IngestPipeline(
      {
        queue: observed,
        store,
        embedder,
        committer: new SequentialCommitter(store, observed),
        throughput,
        logger: pino({ level: "silent" }),
      },
      { ...OPTIONS, ...options },
    );
    pipeline.start();
  }

  async function enqueue(chunks: NewChunk[]): Promise<string> {
    const result = await queue.enqueue({ collection: "docs", chunks, maxQueueSize: 1_000 });
    assert.ok(result.accepted);
    return result.jobId;
  }

  async function counts(jobId: string) {
    const job = await queue.getJob(jobId);
    assert.ok(job);
    return job.counts;
  }

  it("embeds shortest first in slices of the token budget, acks each before the next is embedded", async () => {
    // 12 chunks of 5–16 estimated tokens, arriving longest first; budget 30 tokens a slice.
    const lengths = [16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5];
    const jobId = await enqueue(lengths.map((tokens, i) => chunk(i, tokens)));
    start();

    await until("the first slice to be embedding", () => embedder.calls.length === 1);
    const first = embedder.calls[0]!;
    assert.ok(first.texts.length < lengths.length, "a slice, not the whole reservation, is embedded");
    // Shortest first: 5 + 6 + 7 + 8 = 26 tokens fit in 30, 9 more would not.
    assert.deepEqual(
      first.texts.map((t) => t.length / 4),
      [5, 6, 7, 8],
    );
    assert.equal((await queue.stats()).pending, 12, "nothing is stored before a slice is embedded");
    assert.equal(throughput.rates().chunksPerSecond, 0);

    first.finish();
    // The first slice is stored and acknowledged while the second is still being embedded.
    await until("the second slice to be embedding", () => embedder.calls.length === 2);
    await until("the first slice to be acknowledged", async () => (await counts(jobId)).stored === 4);
    assert.deepEqual(await queue.stats(), { pending: 8, running: 8, dead: 0, pendingTokens: 126 - 26 });
    assert.ok(throughput.rates().chunksPerSecond > 0, "throughput shows while the reservation is embedded");

    await until("every slice to be stored", async () => {
      for (const call of embedder.calls) call.finish();
      return (await queue.getJob(jobId))?.state === "done";
    });
    assert.equal((await counts(jobId)).stored, 12);
    // One lease, acked in five slices ([5–8], [9–11], [12, 13], [14, 15], [16]), in ascending length.
    assert.equal(new Set(acks.map((a) => a.leaseId)).size, 1, "one reservation");
    const receipts = (await queue.listChunks(jobId, { limit: 100 })).items;
    const lengthOf = new Map(receipts.map((r, i) => [r.seq, lengths[i]]));
    assert.deepEqual(
      acks.map((a) => a.seqs.map((seq) => lengthOf.get(seq))),
      [[5, 6, 7, 8], [9, 10, 11], [12, 13], [14, 15], [16]],
    );
  });

  it("a slice whose embedding fails retries alone; the slices before and after it are stored", async () => {
    // Slices of 30 tokens: [c0, c1], [c2, c3], [c4].
    const jobId = await enqueue([chunk(0, 10), chunk(1, 10), chunk(2, 15), chunk(3, 15), chunk(4, 30)]);
    start({ maxAttempts: 1 });
    await until("slice 1", () => embedder.calls.length === 1);
    assert.equal(embedder.calls[0]!.texts.length, 2);
    embedder.calls[0]!.finish();
    await until("slice 2", () => embedder.calls.length === 2);
    // Slice 2 fails whole, then each of its chunks fails alone: the cause is not one text.
    embedder.calls[1]!.fail(new Error("engine crashed"));
    await until("slice 2's chunks alone", () => embedder.calls.length === 3);
    embedder.calls[2]!.fail(new Error("engine crashed"));
    await until("slice 2's second chunk alone", () => embedder.calls.length === 4);
    embedder.calls[3]!.fail(new Error("engine crashed"));
    await until("slice 3", () => embedder.calls.length === 5);
    embedder.calls[4]!.finish();
    await until("the job to settle", async () => {
      const { stored, dead } = await counts(jobId);
      return stored + dead === 5;
    });
    const job = await queue.getJob(jobId);
    assert.equal(job?.counts.stored, 3, "slices 1 and 3 stored");
    assert.equal(job?.counts.dead, 2, "slice 2 dead-lettered (maxAttempts 1)");
    assert.deepEqual(job?.failures.map((f) => f.chunkId).sort(), ["c2", "c3"]);
  });

  it("an outage stops the reservation: stored slices stay, the rest retries without being embedded", async () => {
    const jobId = await enqueue([chunk(0, 10), chunk(1, 10), chunk(2, 15), chunk(3, 15), chunk(4, 30)]);
    start();
    await until("slice 1", () => embedder.calls.length === 1);
    embedder.calls[0]!.finish();
    await until("slice 2", () => embedder.calls.length === 2);
    embedder.calls[1]!.fail(new ProcessingError("connect ECONNREFUSED", { retryable: true, outage: true }));
    await until("the rest to be failed", async () => (await counts(jobId)).failed === 3);
    const job = await counts(jobId);
    assert.equal(job.stored, 2, "the slice stored before the outage stays stored");
    assert.equal(job.running, 0, "nothing is left held");
    assert.equal(embedder.calls.length, 2, "no slice is embedded after an outage");
  });

  it("a failed commit retries its slice and the rest of the reservation; the slices stored before stay", async () => {
    // Slices of 30 tokens: [c0, c1], [c2, c3], [c4].
    const jobId = await enqueue([chunk(0, 10), chunk(1, 10), chunk(2, 15), chunk(3, 15), chunk(4, 30)]);
    start();
    await until("slice 1", () => embedder.calls.length === 1);
    embedder.calls[0]!.finish();
    await until("slice 1 stored", async () => (await counts(jobId)).stored === 2);
    await until("slice 2", () => embedder.calls.length === 2);
    store.down = true;
    embedder.calls[1]!.finish();
    await until("slice 2 to be failed", async () => (await counts(jobId)).failed === 2);
    // Slice 3 embeds while slice 2 is committed; once slice 2's commit failed it is not committed,
    // even with the store back, but retried with the rest.
    store.down = false;
    await until("slice 3", () => embedder.calls.length === 3);
    embedder.calls[2]!.finish();
    await until("the rest to be failed", async () => (await counts(jobId)).failed === 3);
    const job = await counts(jobId);
    assert.equal(job.stored, 2);
    assert.equal(job.running, 0, "nothing is left held");
  });

  it("a stop mid-reservation hands back only the slices not acknowledged yet", async () => {
    const jobId = await enqueue([chunk(0, 10), chunk(1, 10), chunk(2, 15), chunk(3, 15)]);
    start();
    await until("slice 1", () => embedder.calls.length === 1);
    embedder.calls[0]!.finish();
    await until("slice 2", () => embedder.calls.length === 2);
    await until("slice 1 stored", async () => (await counts(jobId)).stored === 2);
    // Shutdown with no time left: what the lease still holds goes back untouched (so does a crash's
    // lease at expiry, as the queue contract shows).
    await pipeline.stop(0);
    const lease = await queue.reserve({ maxChunks: 100, maxTokens: 100_000, leaseMs: 60_000 });
    assert.deepEqual(lease?.chunks.map((c) => c.chunkId).sort(), ["c2", "c3"]);
    assert.deepEqual(
      lease?.chunks.map((c) => c.attempts),
      [0, 0],
    );
    embedder.calls[1]!.fail(new Error("stopped"));
  });
});

describe("sliceByTokens", () => {
  const tokens = (x: { t: number }) => x.t;
  it("sorts by tokens (ties in arrival order) and closes a slice before it would exceed the budget", () => {
    const items = [
      { id: "a", t: 8 },
      { id: "b", t: 2 },
      { id: "c", t: 5 },
      { id: "d", t: 2 },
      { id: "e", t: 40 },
      { id: "f", t: 3 },
    ];
    assert.deepEqual(
      sliceByTokens(items, tokens, 10).map((slice) => slice.map((x) => x.id)),
      [["b", "d", "f"], ["c"], ["a"], ["e"]],
    );
  });

  it("gives nothing for nothing and one slice when everything fits", () => {
    assert.deepEqual(sliceByTokens([], tokens, 10), []);
    assert.deepEqual(sliceByTokens([{ t: 4 }, { t: 6 }], tokens, 10), [[{ t: 4 }, { t: 6 }]]);
  });
});
