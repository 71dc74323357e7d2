import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import { AppError, ProcessingError } from "../domain/errors.js";
import { canonicalJson, contentHash, pointId, sha256, windowPointId } from "../domain/ids.js";
import type { Distance, QueuedChunk, VectorRecord } from "../domain/types.js";
import type { EmbeddedWindow, Embedder } from "../embedder/embedder.js";
import type { ThroughputMeter } from "../observability/throughput-meter.js";
import type { ChunkOutcome, JobQueue, Lease } from "../queue/job-queue.js";
import type { VectorStore } from "../vector-store/vector-store.js";
import type { BatchCommitter, ChunkWrite } from "./batch-committer.js";
import { RateLimiter } from "./rate-limiter.js";
import { classifyFailure } from "./retry-policy.js";

export interface PipelineOptions {
  reserveMaxChunks: number;
  reserveMaxTokens: number;
  leaseMs: number;
  maxParallelTasks: number;
  maxRate: number;
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  distance: Distance;
  /** Longest idle wait before looking at the queue again (work may come from another process). */
  idlePollMs: number;
}

/** What the pipeline reports for monitoring; implemented with prom-client in observability/metrics.ts. */
export interface PipelineMetrics {
  /** A reservation of `chunks` chunks was taken from the queue. */
  batchReserved(chunks: number): void;
  /** One embedder call: texts sent, tokens embedded, wall time. */
  embedded(texts: number, tokens: number, seconds: number): void;
  /** One reservation's points written and acknowledged. */
  committed(seconds: number): void;
  /** Chunks of a collection that ended an attempt in this state (failed = a retry is scheduled). */
  outcome(
    collection: string,
    state: "stored" | "unchanged" | "superseded" | "failed" | "dead",
    count: number,
  ): void;
}

const NO_METRICS: PipelineMetrics = {
  batchReserved() {},
  embedded() {},
  committed() {},
  outcome() {},
};

export interface PipelineDeps {
  queue: JobQueue;
  store: VectorStore;
  embedder: Embedder;
  committer: BatchCommitter;
  throughput: ThroughputMeter;
  logger: Logger;
  metrics?: PipelineMetrics;
}

/**
 * The ingest loop: reserve → skip unchanged → embed → store + ack, with up to
 * `maxParallelTasks` reservations in flight so that one is embedded while another is stored.
 * It talks to interfaces only; main.ts decides what stands behind them.
 */
export class IngestPipeline {
  private running = false;
  private loopDone: Promise<void> = Promise.resolve();
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly rateLimiter: RateLimiter;
  private readonly ensuredCollections = new Set<string>();
  private wake: (() => void) | null = null;
  private readonly log: Logger;
  private readonly metrics: PipelineMetrics;

  constructor(
    private readonly deps: PipelineDeps,
    private readonly options: PipelineOptions,
  ) {
    this.rateLimiter = new RateLimiter(options.maxRate);
    this.log = deps.logger.child({ component: "pipeline" });
    this.metrics = deps.metrics ?? NO_METRICS;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop().catch((error: unknown) => {
      this.log.fatal({ err: error }, "pipeline loop crashed");
      throw error;
    });
  }

  /** Wake the loop now (new work was enqueued in this process). */
  notify(): void {
    this.wake?.();
  }

  /**
   * Stop reserving; wait up to `timeoutMs` for in-flight reservations to finish. Whatever is still
   * running then is released back to the queue untouched, so nothing accepted is lost.
   */
  async stop(timeoutMs: number): Promise<{ finished: number; released: number }> {
    this.running = false;
    this.notify();
    await this.loopDone;
    const pending = [...this.inFlight.entries()];
    const timeout = new AbortController();
    const finishedAll = await Promise.race([
      Promise.allSettled(pending.map(([, task]) => task)).then(() => true),
      sleep(timeoutMs, false, { signal: timeout.signal }).catch(() => false),
    ]);
    timeout.abort();
    let released = 0;
    if (!finishedAll) {
      for (const [leaseId] of this.inFlight) {
        await this.deps.queue.release(leaseId);
        released += 1;
      }
    }
    return { finished: pending.length - released, released };
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  private async loop(): Promise<void> {
    while (this.running) {
      if (this.inFlight.size >= this.options.maxParallelTasks) {
        await Promise.race([...this.inFlight.values(), this.sleepUntilWoken(this.options.idlePollMs)]);
        continue;
      }
      const rateWait = this.rateLimiter.waitMs();
      if (rateWait > 0) {
        await this.sleepUntilWoken(rateWait);
        continue;
      }
      let lease: Lease | null;
      try {
        lease = await this.deps.queue.reserve({
          maxChunks: Math.min(this.options.reserveMaxChunks, this.rateLimiter.allowance()),
          maxTokens: this.options.reserveMaxTokens,
          leaseMs: this.options.leaseMs,
        });
      } catch (error) {
        this.log.error({ err: error }, "reserve failed; retrying");
        await this.sleepUntilWoken(this.options.idlePollMs);
        continue;
      }
      if (!lease) {
        const next = await this.deps.queue.nextAvailableInMs().catch(() => null);
        const wait =
          next === null ? this.options.idlePollMs : Math.min(Math.max(next, 5), this.options.idlePollMs);
        await this.sleepUntilWoken(wait);
        continue;
      }
      this.rateLimiter.take(lease.chunks.length);
      const leaseId = lease.id;
      const task = this.process(lease).finally(() => {
        this.inFlight.delete(leaseId);
        this.notify();
      });
      this.inFlight.set(leaseId, task);
    }
  }

  private sleepUntilWoken(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        if (self.wake === done) self.wake = null;
        resolve();
      }
      this.wake = done;
    });
  }

  private async process(lease: Lease): Promise<void> {
    const started = performance.now();
    const startedAt = Date.now();
    const renewEvery = Math.max(250, Math.floor(this.options.leaseMs / 3));
    const renewTimer = setInterval(() => {
      this.deps.queue.renew(lease.id, this.options.leaseMs).then(
        (held) => {
          if (!held)
            this.log.warn({ leaseId: lease.id }, "lease lost while processing; results will be fenced off");
        },
        (error: unknown) => this.log.warn({ err: error, leaseId: lease.id }, "lease renewal failed"),
      );
    }, renewEvery);
    this.metrics.batchReserved(lease.chunks.length);
    try {
      const { writes, outcomes: prepared, tokens, failed } = await this.prepare(lease.chunks);
      const commitStarted = performance.now();
      const { fenced } = await this.deps.committer.commit({ leaseId: lease.id, writes, outcomes: prepared });
      const fencedSeqs = new Set(fenced);
      if (fenced.length > 0) {
        // Another worker took these chunks when this lease lapsed; its results are the ones that count.
        this.log.warn(
          {
            leaseId: lease.id,
            chunkIds: lease.chunks
              .filter((c) => fencedSeqs.has(c.seq))
              .slice(0, 20)
              .map((c) => c.chunkId),
            chunks: fenced.length,
          },
          "lease lapsed while processing; these chunks belong to another worker now and were not written",
        );
      }
      const outcomes = prepared.filter((o) => !fencedSeqs.has(o.seq));
      // Chunks that failed alone (the rest of their batch is committed) retry or die on their own.
      for (const { chunk, error } of failed) await this.handleFailure(lease, error, [chunk]);
      this.metrics.committed((performance.now() - commitStarted) / 1000);
      const collectionOf = new Map(lease.chunks.map((c) => [c.seq, c.collection]));
      for (const outcome of outcomes)
        this.metrics.outcome(collectionOf.get(outcome.seq) ?? "", outcome.state, 1);
      const stored = outcomes.filter((o) => o.state === "stored").length;
      this.deps.throughput.record(outcomes.length, tokens, startedAt);
      this.log.info(
        {
          leaseId: lease.id,
          jobs: [...new Set(lease.chunks.map((c) => c.jobId))],
          chunks: lease.chunks.length,
          stored,
          unchanged: outcomes.length - stored,
          tokens,
          ms: Math.round(performance.now() - started),
        },
        "batch committed",
      );
    } catch (error) {
      await this.handleFailure(lease, error);
    } finally {
      clearInterval(renewTimer);
    }
  }

  private async prepare(
    chunks: QueuedChunk[],
  ): Promise<{ writes: ChunkWrite[]; outcomes: ChunkOutcome[]; tokens: number; failed: FailedChunk[] }> {
    const info = this.deps.embedder.info();
    const model = { model: info.id, profile: info.profile };
    const byCollection = new Map<string, QueuedChunk[]>();
    for (const chunk of chunks) {
      const list = byCollection.get(chunk.collection) ?? [];
      list.push(chunk);
      byCollection.set(chunk.collection, list);
    }

    const outcomes: ChunkOutcome[] = [];
    const writes: ChunkWrite[] = [];
    const toEmbed: Array<{ chunk: QueuedChunk; base: Omit<VectorRecord, "vector"> }> = [];
    // Everything that shapes a chunk's points besides its text: the same hash means the same vectors.
    const shape = [
      info.prefixes.passage,
      info.maxTokens,
      info.dtype,
      info.pooling,
      info.normalize ? "normalized" : "raw",
    ].join("\u0000");

    for (const [collection, list] of byCollection) {
      await this.ensureCollection(collection, info.dimension);
      const candidates = list.map((chunk) => ({
        chunk,
        base: {
          id: pointId(collection, chunk.chunkId),
          chunkId: chunk.chunkId,
          parentChunkId: null,
          documentId: chunk.documentId,
          payload: chunk.payload,
          // The overflow policy shapes the windows, so it is part of the hash too.
          contentHash: contentHash(
            info.id,
            [shape, chunk.overflow.policy, chunk.overflow.overlapTokens].join("\u0000"),
            chunk.text,
          ),
          payloadHash: sha256(canonicalJson(chunk.payload)),
        },
      }));
      const existing = await this.deps.store.fingerprints(
        collection,
        candidates.map((c) => c.base.id),
      );
      for (const { chunk, base } of candidates) {
        const known = existing.get(base.id);
        if (known?.contentHash === base.contentHash) {
          // Same text, model and policy: the vectors would be identical, so never embed again.
          if (known.payloadHash === base.payloadHash) {
            outcomes.push({ seq: chunk.seq, state: "unchanged", ...model });
            continue;
          }
          // Only the payload changed. A split chunk's windows each carry it, so re-embed those.
          if (chunk.overflow.policy !== "split") {
            writes.push({
              seq: chunk.seq,
              collection,
              records: [],
              replaces: null,
              payloadUpdate: {
                id: base.id,
                payload: base.payload,
                payloadHash: base.payloadHash,
                documentId: base.documentId,
              },
            });
            outcomes.push({
              seq: chunk.seq,
              state: "stored",
              tokens: 0,
              truncatedTokens: 0,
              windows: 1,
              ...model,
            });
            continue;
          }
        }
        toEmbed.push({ chunk, base });
      }
    }

    let tokens = 0;
    const failed: FailedChunk[] = [];
    if (toEmbed.length > 0) {
      const embedStarted = performance.now();
      const results = await this.embedIsolatingFailures(toEmbed.map((e) => e.chunk));
      const embedSeconds = (performance.now() - embedStarted) / 1000;
      const truncated: Array<{ jobId: string; chunkId: string; truncatedTokens: number }> = [];
      toEmbed.forEach((entry, index) => {
        const embedded = results[index];
        if (!embedded || "error" in embedded) {
          failed.push({ chunk: entry.chunk, error: embedded?.error ?? new Error("no embedding returned") });
          return;
        }
        const chunkTokens = embedded.tokens;
        const truncatedTokens = embedded.truncatedTokens;
        const records = windowRecords(
          entry.chunk,
          entry.base,
          embedded.vector,
          chunkTokens,
          embedded.windows,
        );
        tokens += records.reduce((sum, r) => sum + r.tokens, 0);
        writes.push({
          seq: entry.chunk.seq,
          collection: entry.chunk.collection,
          records: records.map((r) => r.record),
          replaces: entry.chunk.chunkId,
          payloadUpdate: null,
        });
        outcomes.push({
          seq: entry.chunk.seq,
          state: "stored",
          tokens: chunkTokens,
          truncatedTokens,
          windows: records.length,
          ...model,
        });
        if (truncatedTokens > 0) {
          truncated.push({ jobId: entry.chunk.jobId, chunkId: entry.chunk.chunkId, truncatedTokens });
        }
      });
      // One line per batch, naming every truncated chunk: a line per chunk costs real time when
      // half a corpus is over the limit, and the receipts hold the per-chunk counts anyway.
      if (truncated.length > 0) {
        this.log.warn(
          { truncated: truncated.length, chunks: truncated },
          "chunks longer than the model's limit were truncated (overflow policy truncate)",
        );
      }
      this.metrics.embedded(toEmbed.length, tokens, embedSeconds);
    }
    return { writes, outcomes, tokens, failed };
  }

  private async ensureCollection(collection: string, dimension: number): Promise<void> {
    if (this.ensuredCollections.has(collection)) return;
    await this.deps.store.ensureCollection({ name: collection, dimension, distance: this.options.distance });
    this.ensuredCollections.add(collection);
  }

  /**
   * Embeds a reservation's chunks in one call. If that call fails, each chunk is embedded alone, so
   * one poisonous text fails only itself instead of dragging its whole batch into dead letters; if
   * every chunk fails alone too, the cause is not the text and the original error is thrown. An outage
   * (ProcessingError.outage) is thrown at once: no text is at fault.
   */
  private async embedIsolatingFailures(
    chunks: QueuedChunk[],
  ): Promise<Array<EmbeddedChunk | { error: unknown }>> {
    const embedAll = async (batch: QueuedChunk[]): Promise<EmbeddedChunk[]> => {
      const result = await this.deps.embedder.embed(
        batch.map((c) => c.text),
        "passage",
        batch.map((c) => c.overflow),
      );
      return batch.map((_, index) => {
        const vector = result.vectors[index];
        if (!vector)
          throw new Error(`embedder returned ${result.vectors.length} vectors for ${batch.length} texts`);
        return {
          vector,
          tokens: result.tokens[index] ?? 0,
          truncatedTokens: result.truncatedTokens[index] ?? 0,
          windows: result.windows[index] ?? null,
        };
      });
    };
    try {
      return await embedAll(chunks);
    } catch (error) {
      // An engine that is down or rate-limiting fails every text alike: one by one would only hammer it.
      if (chunks.length === 1 || (error instanceof ProcessingError && error.outage)) throw error;
      this.log.warn(
        { err: error, chunks: chunks.length },
        "embedding a batch failed; embedding its chunks one by one to find the cause",
      );
      const results: Array<EmbeddedChunk | { error: unknown }> = [];
      for (const chunk of chunks) {
        try {
          const [embedded] = await embedAll([chunk]);
          results.push(embedded ?? { error: new Error("no embedding returned") });
        } catch (chunkError) {
          results.push({ error: chunkError });
        }
      }
      if (results.every((r) => "error" in r)) throw error;
      return results;
    }
  }

  private async handleFailure(
    lease: Lease,
    error: unknown,
    chunks: QueuedChunk[] = lease.chunks,
  ): Promise<void> {
    if (error instanceof AppError && error.code === "collection_not_found") {
      // The collection was deleted behind our back (an operator, another tool): create it again on
      // the retry instead of failing every batch for it until the process restarts.
      for (const chunk of chunks) this.ensuredCollections.delete(chunk.collection);
    }
    const attempts = Math.min(...chunks.map((c) => c.attempts));
    const decision = classifyFailure(error, attempts, this.options.retryBaseMs, this.options.retryMaxMs);
    const willDie = !decision.retryable || chunks.every((c) => c.attempts + 1 >= this.options.maxAttempts);
    this.log[willDie ? "error" : "warn"](
      {
        err: error,
        leaseId: lease.id,
        jobs: [...new Set(chunks.map((c) => c.jobId))],
        chunkIds: chunks.slice(0, 20).map((c) => c.chunkId),
        chunks: chunks.length,
        attempts: attempts + 1,
        retryInMs: decision.retryable ? decision.delayMs : null,
      },
      decision.retryable ? "batch failed; will retry" : "batch failed permanently; dead-lettering",
    );
    try {
      await this.deps.queue.fail(lease.id, {
        seqs: chunks.map((c) => c.seq),
        error: decision.reason,
        retryDelayMs: decision.delayMs,
        maxAttempts: decision.retryable ? this.options.maxAttempts : 0,
      });
      for (const chunk of chunks) {
        const dies = !decision.retryable || chunk.attempts + 1 >= this.options.maxAttempts;
        this.metrics.outcome(chunk.collection, dies ? "dead" : "failed", 1);
      }
    } catch (failError) {
      // The lease will expire and the chunks come back; nothing is lost, but say so.
      this.log.error(
        { err: failError, leaseId: lease.id },
        "could not record failure; chunks return at lease expiry",
      );
    }
  }
}

interface EmbeddedChunk {
  vector: Float32Array;
  tokens: number;
  truncatedTokens: number;
  windows: EmbeddedWindow[] | null;
}

interface FailedChunk {
  chunk: QueuedChunk;
  error: unknown;
}

/**
 * The points of one embedded chunk: one, or one per window of a split chunk. Window 0 keeps the
 * chunk's own point id, so a chunk that stops (or starts) being split reuses it; every window
 * carries the parent id and its index, so all of a chunk's windows can be found and replaced.
 */
function windowRecords(
  chunk: QueuedChunk,
  base: Omit<VectorRecord, "vector">,
  vector: Float32Array,
  tokens: number,
  windows: EmbeddedWindow[] | null,
): Array<{ record: VectorRecord; tokens: number }> {
  if (!windows) return [{ record: { ...base, vector }, tokens }];
  return windows.map((window, index) => {
    const chunkId = `${chunk.chunkId}#${index}`;
    return {
      tokens: window.tokens,
      record: {
        ...base,
        id: index === 0 ? base.id : windowPointId(chunk.collection, chunk.chunkId, index),
        chunkId,
        parentChunkId: chunk.chunkId,
        vector: window.vector,
        payload: {
          ...chunk.payload,
          parent_chunk_id: chunk.chunkId,
          window_index: index,
          window_count: windows.length,
          window_text: window.text,
        },
      },
    };
  });
}
