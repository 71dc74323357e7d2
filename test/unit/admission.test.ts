import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AppError, type ErrorCode } from "../../src/domain/errors.js";
import { idempotentJobId } from "../../src/domain/ids.js";
import type { EmbedKind, ModelInfo, NewChunk } from "../../src/domain/types.js";
import type { EnqueueRequest, EnqueueResult } from "../../src/queue/job-queue.js";
import { Admission, type AdmissionOptions, type ClientChunk, newChunk } from "../../src/server/admission.js";
import { CollectionBindings } from "../../src/server/collection-bindings.js";
import { ERROR_STATUS } from "../../src/server/error-status.js";
import { memoryStore } from "../helpers/in-memory-backends.js";

/**
 * Admission with in-memory fakes: a queue that keeps jobs in a Map and applies the two bounds, an
 * embedder that counts a token per word plus two special tokens, and a settable drain rate.
 */
class FakeQueue {
  readonly jobs = new Map<string, NewChunk[]>();
  pendingTokens = 0;
  calls = 0;

  get pending(): number {
    return [...this.jobs.values()].reduce((sum, chunks) => sum + chunks.length, 0);
  }

  async enqueue(request: EnqueueRequest): Promise<EnqueueResult> {
    this.calls++;
    const jobId = request.jobId ?? "made-up";
    const existing = this.jobs.get(jobId);
    if (existing) return { accepted: true, jobId, count: existing.length, duplicate: true };
    const tokens = request.chunks.reduce((sum, c) => sum + c.estimatedTokens, 0);
    const maxQueueTokens = request.maxQueueTokens ?? Number.POSITIVE_INFINITY;
    const limit =
      this.pending + request.chunks.length > request.maxQueueSize
        ? "chunks"
        : this.pendingTokens + tokens > maxQueueTokens
          ? "tokens"
          : null;
    if (limit) {
      return {
        accepted: false,
        reason: "queue_full",
        limit,
        pending: this.pending,
        pendingTokens: this.pendingTokens,
        maxQueueSize: request.maxQueueSize,
        maxQueueTokens,
      };
    }
    this.jobs.set(jobId, request.chunks);
    this.pendingTokens += tokens;
    return { accepted: true, jobId, count: request.chunks.length, duplicate: false };
  }
}

class FakeEmbedder {
  readonly counted: string[][] = [];
  async countTokens(texts: string[], _kind: EmbedKind): Promise<number[]> {
    this.counted.push(texts);
    return texts.map((text) => text.split(/\s+/).filter(Boolean).length + 2);
  }
}

const MODEL: ModelInfo = {
  id: "test-model",
  profile: "all-MiniLM-L6",
  dimension: 4,
  maxTokens: 32,
  pooling: "mean",
  normalize: true,
  prefixes: { passage: "", query: "" },
  dtype: "q8",
};

const OPTIONS: AdmissionOptions = {
  maxQueueSize: 10,
  maxQueueTokens: 1000,
  maxChunksPerRequest: 8,
  maxWindowsPerChunk: 3,
};

function setup(
  options: Partial<AdmissionOptions> = {},
  model: ModelInfo | null = MODEL,
  chunksPerSecond = 0,
) {
  const queue = new FakeQueue();
  const embedder = new FakeEmbedder();
  const throughput = { rates: () => ({ chunksPerSecond, tokensPerSecond: chunksPerSecond * 50 }) };
  const store = memoryStore();
  const admission = new Admission(
    queue,
    throughput,
    embedder,
    () => model,
    { ...OPTIONS, ...options },
    new CollectionBindings(store),
  );
  return { queue, embedder, admission, store };
}

const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`).join(" ");
const chunk = (id: string, text = "a short text", payload = {}): ClientChunk =>
  newChunk(id, text, "doc", payload);
const chunks = (n: number, text?: string) => Array.from({ length: n }, (_, i) => chunk(`c${i}`, text));
const TRUNCATE = { policy: "truncate", overlapTokens: 0 } as const;
const REJECT = { policy: "reject", overlapTokens: 0 } as const;
const SPLIT = { policy: "split", overlapTokens: 4 } as const;

/** Awaits a refusal and returns it, checking its code (and so its status). */
async function refused(promise: Promise<unknown>, code: ErrorCode): Promise<AppError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof AppError, String(error));
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected ${code}`);
}

describe("Admission", () => {
  it("queues a valid request with its overflow spec and a fresh job id", async () => {
    const { queue, admission } = setup();
    const admitted = await admission.admit("docs", chunks(3), SPLIT);
    assert.deepEqual(
      { count: admitted.count, duplicate: admitted.duplicate },
      { count: 3, duplicate: false },
    );
    const stored = queue.jobs.get(admitted.jobId);
    assert.equal(stored?.length, 3);
    assert.deepEqual(stored?.[0]?.overflow, SPLIT);
  });

  it("refuses malformed requests before the queue is touched", async () => {
    const { queue, admission } = setup();
    await refused(admission.admit("docs", [], TRUNCATE), "empty_batch");
    await refused(admission.admit("docs", chunks(9), TRUNCATE), "payload_too_large");
    await refused(admission.admit("docs", [chunk("a"), chunk("b", "  \n ")], TRUNCATE), "empty_text");
    const dup = await refused(
      admission.admit("docs", [chunk("a"), chunk("a")], TRUNCATE),
      "duplicate_chunk_id",
    );
    assert.deepEqual(dup.details?.chunk_ids, ["a"]);
    let deep: unknown = "leaf";
    for (let i = 0; i < 40; i++) deep = { deep };
    await refused(admission.admit("docs", [chunk("a", "text", { deep })], TRUNCATE), "invalid_request");
    assert.equal(queue.calls, 0);
  });

  it("a request larger than the whole queue is 413, not 429: waiting cannot help", async () => {
    const { admission } = setup({ maxQueueSize: 5, maxChunksPerRequest: 100 });
    const error = await refused(admission.admit("docs", chunks(6), TRUNCATE), "payload_too_large");
    assert.equal(ERROR_STATUS[error.code], 413);
    assert.equal(error.retryAfterSeconds, undefined);
  });

  describe("a full queue", () => {
    it("is 429 with a Retry-After from the drain rate (chunks that must drain / chunks per second)", async () => {
      const { admission } = setup({}, MODEL, 2);
      await admission.admit("docs", chunks(8), TRUNCATE);
      // 8 pending + 5 more over a bound of 10: 3 must drain, at 2 a second: 2 s.
      const error = await refused(admission.admit("docs", chunks(5), TRUNCATE), "queue_full");
      assert.equal(ERROR_STATUS[error.code], 429);
      assert.equal(error.retryAfterSeconds, 2);
      assert.equal(error.details?.limit, "chunks");
      assert.equal(error.details?.pending, 8);
    });

    it("guesses 5 s while nothing has drained yet, and never says more than 300 s", async () => {
      const { admission } = setup(
        { maxQueueSize: 10_000, maxChunksPerRequest: 10_000, maxQueueTokens: 10_000_000 },
        MODEL,
        0.001,
      );
      await admission.admit("docs", chunks(9_000), TRUNCATE);
      const slow = await refused(admission.admit("docs", chunks(2_000), TRUNCATE), "queue_full");
      assert.equal(slow.retryAfterSeconds, 300);
      const fresh = setup({ maxQueueSize: 2 });
      await fresh.admission.admit("docs", chunks(2), TRUNCATE);
      assert.equal(
        (await refused(fresh.admission.admit("docs", chunks(1), TRUNCATE), "queue_full")).retryAfterSeconds,
        5,
      );
    });

    it("by tokens: 429 naming the token bound, Retry-After counted in chunks of this request's size", async () => {
      const { admission } = setup({ maxQueueTokens: 120 }, MODEL, 0.25);
      const text = "x".repeat(150); // 150 bytes: 52 estimated tokens
      await admission.admit("docs", [chunk("a", text), chunk("b", text)], TRUNCATE);
      const error = await refused(admission.admit("docs", [chunk("c", text)], TRUNCATE), "queue_full");
      assert.equal(error.details?.limit, "tokens");
      assert.equal(error.details?.pending, 2);
      assert.equal(error.details?.pending_tokens, 104);
      assert.match(error.message, /MAX_QUEUE_TOKENS/);
      // 104 pending + 52 over 120: 36 tokens must drain, 52-token chunks: 1 chunk, 4 s at 0.25/s.
      assert.equal(error.retryAfterSeconds, 4);
    });
  });

  describe("the reject policy", () => {
    it("refuses the whole request naming the over-long chunks, counting only texts that may not fit", async () => {
      const { queue, embedder, admission } = setup();
      const long = words(40); // 42 tokens with [CLS] and [SEP], over 32
      const nearly = words(25); // 27 tokens: under the limit, but too many bytes to be sure without counting
      const error = await refused(
        admission.admit("docs", [chunk("short"), chunk("long", long), chunk("nearly", nearly)], REJECT),
        "text_too_long",
      );
      assert.equal(ERROR_STATUS[error.code], 422);
      assert.deepEqual(error.details?.chunks, [{ chunk_id: "long", tokens: 42 }]);
      assert.deepEqual(embedder.counted, [[long, nearly]], "the short text is never tokenized");
      assert.equal(queue.calls, 0);
    });

    it("admits texts that fit, queued as truncate (nothing is left to cut)", async () => {
      const { queue, admission } = setup();
      const admitted = await admission.admit("docs", [chunk("nearly", words(25))], REJECT);
      assert.deepEqual(queue.jobs.get(admitted.jobId)?.[0]?.overflow, {
        policy: "truncate",
        overlapTokens: 0,
      });
    });

    it("needs the tokenizer: 503 with Retry-After while the model loads", async () => {
      const { queue, admission } = setup({}, null);
      const error = await refused(admission.admit("docs", chunks(1), REJECT), "model_not_ready");
      assert.equal(ERROR_STATUS[error.code], 503);
      assert.equal(error.retryAfterSeconds, 2);
      assert.equal(queue.calls, 0);
    });
  });

  describe("the window cap (split and pool)", () => {
    it("refuses a text that would need more than MAX_WINDOWS_PER_CHUNK windows", async () => {
      // Windows of 32 - 3 = 29 tokens, 4 of overlap: 3 windows hold 29 × 3 - 4 × 2 = 79 tokens.
      const { embedder, admission } = setup();
      const error = await refused(
        admission.admit("docs", [chunk("fits", words(60)), chunk("over", words(90))], SPLIT),
        "text_too_long",
      );
      assert.deepEqual(error.details?.chunks, [{ chunk_id: "over", tokens: 92 }]);
      assert.equal(error.details?.max_tokens, 79);
      assert.equal(error.details?.max_windows, 3);
      assert.equal(embedder.counted.length, 1);
    });

    it("admits long texts under the cap, and truncate never counts anything", async () => {
      const { embedder, admission } = setup();
      await admission.admit("docs", [chunk("fits", words(60))], { policy: "pool", overlapTokens: 4 });
      await admission.admit("docs", [chunk("long", words(500))], TRUNCATE);
      assert.equal(embedder.counted.length, 1);
    });

    it("without a model: short texts pass, a text that could be over waits (503)", async () => {
      const { admission } = setup({}, null);
      await admission.admit("docs", chunks(2), SPLIT);
      await refused(admission.admit("docs", [chunk("long", "x".repeat(200))], SPLIT), "model_not_ready");
    });
  });

  describe("idempotent replays", () => {
    it("the same Idempotency-Key returns the first job, adds nothing, and is marked duplicate", async () => {
      const { queue, admission } = setup();
      const first = await admission.admit("docs", chunks(3), TRUNCATE, { idempotencyKey: "k-1" });
      const again = await admission.admit("docs", chunks(3), TRUNCATE, { idempotencyKey: "k-1" });
      assert.equal(first.jobId, idempotentJobId("docs", "k-1"));
      assert.deepEqual(again, { jobId: first.jobId, count: 3, duplicate: true });
      assert.equal(queue.pending, 3);
    });

    it("the key is per collection, and requests without one never collide", async () => {
      const { admission } = setup();
      const a = await admission.admit("docs", chunks(1), TRUNCATE, { idempotencyKey: "k" });
      const b = await admission.admit("other", chunks(1), TRUNCATE, { idempotencyKey: "k" });
      const c = await admission.admit("docs", chunks(1), TRUNCATE);
      const d = await admission.admit("docs", chunks(1), TRUNCATE);
      assert.equal(new Set([a.jobId, b.jobId, c.jobId, d.jobId]).size, 4);
    });
  });
});

describe("Admission while a re-embed builds the collection's next version (dual writes)", () => {
  /** Routes `docs` to itself with a copy into `docs__v2`, as CollectionBindings does while both models are served. */
  function dualWriting() {
    const queue = new FakeQueue();
    const admission = new Admission(
      queue,
      { rates: () => ({ chunksPerSecond: 0, tokensPerSecond: 0 }) },
      new FakeEmbedder(),
      () => MODEL,
      OPTIONS,
      { route: async (collection) => ({ collection, alsoTo: `${collection}__v2`, model: null }) },
    );
    return { queue, admission };
  }

  it("queues the chunks into both versions, the copy under an id derived from the primary's", async () => {
    const { queue, admission } = dualWriting();
    const admitted = await admission.admit("docs", chunks(3), TRUNCATE, { idempotencyKey: "k1" });
    assert.equal(queue.jobs.size, 2);
    const copyId = [...queue.jobs.keys()].find((id) => id !== admitted.jobId);
    assert.ok(copyId);
    assert.deepEqual(
      queue.jobs.get(copyId)?.map((c) => c.chunkId),
      ["c0", "c1", "c2"],
    );
    // The same request again finds both jobs and adds nothing.
    const again = await admission.admit("docs", chunks(3), TRUNCATE, { idempotencyKey: "k1" });
    assert.equal(again.duplicate, true);
    assert.equal(queue.pending, 6);
  });

  it("admits a request only if its copy fits too: 429 rather than a queue over MAX_QUEUE_SIZE", async () => {
    const { queue, admission } = dualWriting();
    await admission.admit("docs", chunks(4), TRUNCATE);
    assert.equal(queue.pending, 8);
    // 8 of 10 queued: 2 more fit alone, not with their copies.
    await assert.rejects(admission.admit("docs", chunks(2), TRUNCATE), (error: unknown) => {
      assert.ok(error instanceof AppError);
      assert.equal(error.code, "queue_full");
      return true;
    });
    assert.equal(queue.pending, 8, "nothing queued");
    await admission.admit("docs", chunks(1), TRUNCATE);
    assert.equal(queue.pending, 10);
  });
});
