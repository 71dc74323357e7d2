import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import { ProcessingError } from "../../src/domain/errors.js";
import type { EmbedKind } from "../../src/domain/types.js";
import type { Embedder } from "../../src/embedder/embedder.js";
import { ThroughputMeter } from "../../src/observability/throughput-meter.js";
import { SequentialCommitter } from "../../src/pipeline/batch-committer.js";
import {
  IngestPipeline,
  type PipelineMetrics,
  type PipelineOptions,
} from "../../src/pipeline/ingest-pipeline.js";
import { FAKE_MODEL, fakeEmbedder, memoryLeaseQueue, memoryStore } from "../helpers/in-memory-backends.js";

/**
 * IngestPipeline over in-memory fakes (test/helpers/in-memory-backends.ts): a lease queue, a store
 * with the version rule, a scripted embedder, the real SequentialCommitter. No model, no SQLite, no
 * HTTP; retries wait a millisecond or two. Waits poll the fakes' state; the cap is only a safety net.
 */

const OPTIONS: PipelineOptions = {
  reserveMaxChunks: 16,
  reserveMaxTokens: 10_000,
  leaseMs: 30_000,
  maxParallelTasks: 2,
  maxRate: 0,
  maxAttempts: 3,
  retryBaseMs: 1,
  retryMaxMs: 4,
  distance: "Cosine",
  idlePollMs: 5,
  // One slice per reservation: these tests are about the lease, not about slicing.
  sliceMaxTokens: 10_000,
};

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !condition(); waited += 2) {
    if (waited > 10_000) throw new Error(`timed out waiting until ${what}`);
    await sleep(2);
  }
}

/**
 * The in-memory embedder (vector [length, 1, 0, 0], tokens ⌈length/4⌉), with every call recorded;
 * `before` runs first and may throw (a failing text, an outage) or wait (a slow model).
 */
function scriptedEmbedder(before: (texts: string[], call: number) => Promise<void> | void = () => {}) {
  const inner = fakeEmbedder();
  const calls: Array<{ texts: string[]; kind: EmbedKind }> = [];
  const embedder: Embedder = {
    ...inner,
    async embed(texts, kind, overflow) {
      calls.push({ texts, kind });
      await before(texts, calls.length);
      return inner.embed(texts, kind, overflow);
    },
  };
  return { embedder, calls };
}

function recordingMetrics() {
  const outcomes: Record<string, number> = {};
  const metrics: PipelineMetrics = {
    batchReserved() {},
    embedded() {},
    committed() {},
    outcome(_collection, state, count) {
      outcomes[state] = (outcomes[state] ?? 0) + count;
    },
  };
  return { metrics, outcomes };
}

const running: IngestPipeline[] = [];
const openers: Array<() => void> = [];
afterEach(async () => {
  // Open every gate first: a task stuck on one keeps its lease-renewal timer, and the process, alive.
  for (const open of openers.splice(0)) open();
  await Promise.all(running.splice(0).map((p) => p.stop(100)));
});

/** A promise that resolves when `open` is called (or when the test ends). */
function closedGate(): { gate: Promise<void>; open: () => void } {
  let open: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  openers.push(open);
  return { gate, open };
}

function harness(embedder: Embedder, options: Partial<PipelineOptions> = {}) {
  const work = memoryLeaseQueue();
  const store = memoryStore();
  const { metrics, outcomes } = recordingMetrics();
  const pipeline = new IngestPipeline(
    {
      queue: work.queue,
      store,
      embedder,
      committer: new SequentialCommitter(store, work.queue),
      throughput: new ThroughputMeter(),
      logger: pino({ level: "silent" }),
      metrics,
    },
    { ...OPTIONS, ...options },
  );
  running.push(pipeline);
  return { work, store, pipeline, outcomes };
}

describe("IngestPipeline", () => {
  it("reserves, plans, embeds, writes and acks; a later version with the same content is not embedded again", async () => {
    const { embedder, calls } = scriptedEmbedder();
    const { work, store, pipeline, outcomes } = harness(embedder);
    work.add([
      { chunkId: "a", text: "aspirin", payload: { n: 1 } },
      { chunkId: "b", text: "ibuprofen 200", payload: { n: 2 } },
      { chunkId: "c", text: "paracetamol", payload: { n: 3 } },
    ]);
    pipeline.start();
    await until(() => work.idle(), "the first three are done");

    // One call, shortest first (a reservation is embedded sorted by estimated tokens: progress-slices.ts).
    assert.deepEqual(
      calls.map((c) => [c.kind, c.texts]),
      [["passage", ["aspirin", "paracetamol", "ibuprofen 200"]]],
    );
    assert.deepEqual(
      work.calls.map((c) => c.op),
      ["reserve", "ack"],
    );
    const ids = { model: FAKE_MODEL.id, profile: FAKE_MODEL.profile };
    assert.deepEqual(
      [...work.entries.values()].map((e) => e.outcome),
      [
        { seq: 1, state: "stored", tokens: 2, truncatedTokens: 0, windows: 1, ...ids },
        { seq: 2, state: "stored", tokens: 4, truncatedTokens: 0, windows: 1, ...ids },
        { seq: 3, state: "stored", tokens: 3, truncatedTokens: 0, windows: 1, ...ids },
      ],
    );
    const docs = store.chunks.get("docs");
    assert.deepEqual([...(docs?.keys() ?? [])].sort(), ["a", "b", "c"]);
    assert.deepEqual([...(docs?.get("b")?.records[0]?.vector ?? [])], [13, 1, 0, 0]);
    assert.equal(docs?.get("b")?.version, 2);

    // New versions: a unchanged (same text and payload), b's payload changed, c's text changed.
    work.add([
      { chunkId: "a", text: "aspirin", payload: { n: 1 } },
      { chunkId: "b", text: "ibuprofen 200", payload: { n: 20 } },
      { chunkId: "c", text: "paracetamol 500", payload: { n: 3 } },
    ]);
    await until(() => work.idle(), "the second three are done");
    assert.deepEqual(calls.at(-1)?.texts, ["paracetamol 500"], "only the changed text is embedded");
    assert.equal(calls.length, 2);
    assert.deepEqual(
      [4, 5, 6].map((seq) => {
        const outcome = work.entries.get(seq)?.outcome;
        return [outcome?.state, outcome?.state === "stored" ? outcome.tokens : null];
      }),
      [
        ["unchanged", null],
        ["stored", 0],
        ["stored", 4],
      ],
    );
    assert.deepEqual(
      ["a", "b", "c"].map((id) => [docs?.get(id)?.version, docs?.get(id)?.payload]),
      [
        [4, { n: 1 }],
        [5, { n: 20 }],
        [6, { n: 3 }],
      ],
    );
    assert.deepEqual(outcomes, { stored: 5, unchanged: 1 });
  });

  it("a failing chunk fails alone: its batch mates are stored, it is retried, then dead-lettered", async () => {
    const { embedder, calls } = scriptedEmbedder((texts) => {
      if (texts.some((t) => t.includes("POISON"))) throw new Error("tokenizer crashed");
    });
    const { work, store, pipeline, outcomes } = harness(embedder);
    work.add([
      { chunkId: "a", text: "fine one" },
      { chunkId: "p", text: "POISON pill" },
      { chunkId: "b", text: "fine two" },
    ]);
    pipeline.start();
    await until(() => work.idle(), "every chunk is done or dead");

    const poison = work.entries.get(2);
    assert.equal(poison?.state, "dead");
    assert.equal(poison?.chunk.attempts, 3);
    assert.deepEqual(poison?.errors, ["tokenizer crashed", "tokenizer crashed", "tokenizer crashed"]);
    assert.deepEqual(
      [1, 3].map((seq) => work.entries.get(seq)?.outcome?.state),
      ["stored", "stored"],
    );
    assert.deepEqual([...(store.chunks.get("docs")?.keys() ?? [])].sort(), ["a", "b"]);
    // Every failure names only the poisonous chunk, and the queue is told to dead-letter at the third.
    const failures = work.calls.flatMap((c) => (c.op === "fail" ? [c.request] : []));
    assert.deepEqual(
      failures.map((f) => [f.seqs, f.maxAttempts]),
      [
        [[2], 3],
        [[2], 3],
        [[2], 3],
      ],
    );
    // The batch (shortest first), each text alone, then the poisonous one alone on each of its two retries.
    assert.deepEqual(
      calls.map((c) => c.texts),
      [
        ["fine one", "fine two", "POISON pill"],
        ["fine one"],
        ["fine two"],
        ["POISON pill"],
        ["POISON pill"],
        ["POISON pill"],
      ],
    );
    assert.deepEqual(outcomes, { stored: 2, failed: 2, dead: 1 });
  });

  it("an outage fails the whole lease and retries it whole, never text by text, until the engine is back", async () => {
    const { embedder, calls } = scriptedEmbedder((_texts, call) => {
      if (call <= 2) throw new ProcessingError("engine unreachable", { retryable: true, outage: true });
    });
    const { work, pipeline } = harness(embedder);
    work.add([
      { chunkId: "a", text: "one" },
      { chunkId: "b", text: "two" },
      { chunkId: "c", text: "three" },
    ]);
    pipeline.start();
    await until(() => work.idle(), "the chunks are stored after the outage");

    assert.deepEqual(
      calls.map((c) => c.texts),
      [
        ["one", "two", "three"],
        ["one", "two", "three"],
        ["one", "two", "three"],
      ],
    );
    const failures = work.calls.flatMap((c) => (c.op === "fail" ? [c.request] : []));
    assert.deepEqual(
      failures.map((f) => [f.seqs, f.maxAttempts]),
      [
        [[1, 2, 3], 3],
        [[1, 2, 3], 3],
      ],
    );
    assert.deepEqual(
      [...work.entries.values()].map((e) => [e.state, e.outcome?.state, e.chunk.attempts]),
      [
        ["done", "stored", 2],
        ["done", "stored", 2],
        ["done", "stored", 2],
      ],
    );
  });

  it("stop() waits for in-flight work that finishes in time and reserves nothing more", async () => {
    const { gate, open } = closedGate();
    const { embedder, calls } = scriptedEmbedder(() => gate);
    const { work, pipeline } = harness(embedder, { reserveMaxChunks: 2, maxParallelTasks: 1 });
    work.add([
      { chunkId: "a", text: "one" },
      { chunkId: "b", text: "two" },
      { chunkId: "c", text: "three" },
    ]);
    pipeline.start();
    await until(() => calls.length === 1, "the first lease is being embedded");
    const stopping = pipeline.stop(10_000);
    open();
    assert.deepEqual(await stopping, { finished: 1, released: 0 });
    assert.deepEqual(
      [...work.entries.values()].map((e) => e.state),
      ["done", "done", "queued"],
    );
    assert.deepEqual(
      work.calls.map((c) => c.op),
      ["reserve", "ack"],
    );
  });

  it("stop() releases work still in flight at its deadline, untouched: no attempt counted, nothing acked", async () => {
    const { gate, open } = closedGate();
    const { embedder, calls } = scriptedEmbedder(() => gate);
    const { work, pipeline } = harness(embedder, { maxParallelTasks: 1 });
    work.add([
      { chunkId: "a", text: "one" },
      { chunkId: "b", text: "two" },
    ]);
    pipeline.start();
    await until(() => calls.length === 1, "the lease is being embedded");
    assert.deepEqual(await pipeline.stop(5), { finished: 0, released: 1 });
    assert.deepEqual(
      work.calls.map((c) => [c.op, c.lease]),
      [
        ["reserve", "lease-1"],
        ["release", "lease-1"],
      ],
    );
    assert.deepEqual(
      [...work.entries.values()].map((e) => [e.state, e.chunk.attempts]),
      [
        ["queued", 0],
        ["queued", 0],
      ],
    );
    // The slow embed ends later: its ack is for a lease it no longer holds, and changes nothing.
    open();
    await until(() => pipeline.inFlightCount === 0, "the released task has ended");
    assert.deepEqual(
      [...work.entries.values()].map((e) => [e.state, e.outcome]),
      [
        ["queued", null],
        ["queued", null],
      ],
    );
  });
});
