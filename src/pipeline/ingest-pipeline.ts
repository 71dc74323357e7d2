import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import { logicalName } from "../domain/collection-versions.js";
import { AppError, ProcessingError } from "../domain/errors.js";
import { pointId } from "../domain/ids.js";
import { bindingFor, type ModelBinding } from "../domain/model-binding.js";
import type { Distance, ModelInfo, QueuedChunk } from "../domain/types.js";
import type { Embedder } from "../embedder/embedder.js";
import type { ServedModel } from "../embedder/model-roster.js";
import type { ThroughputMeter } from "../observability/throughput-meter.js";
import type { JobQueue, Lease } from "../queue/job-queue.js";
import type { VectorStore } from "../vector-store/vector-store.js";
import type { BatchCommitter } from "./batch-committer.js";
import { IsolatingEmbedder } from "./isolating-embedder.js";
import { type EmbedPlan, embeddedChunk, type Plan, type PlannedChunk, planChunks } from "./point-planner.js";
import { sliceByTokens } from "./progress-slices.js";
import { RateLimiter } from "./rate-limiter.js";
import { classifyFailure } from "./retry-policy.js";

/** Document replacements finalized after each batch at most (the rest after the next ones). */
const FINALIZATIONS_PER_BATCH = 5;

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
  /**
   * Estimated tokens embedded and committed together: a reservation is sorted by length and cut
   * into slices of about this size, each stored and acknowledged as soon as it is embedded.
   */
  sliceMaxTokens: number;
}

/** What the pipeline reports for monitoring; implemented with prom-client in server/metrics.ts. */
export interface PipelineMetrics {
  /** A reservation of `chunks` chunks was taken from the queue. */
  batchReserved(chunks: number): void;
  /** One embedder call: texts sent, tokens embedded, wall time. */
  embedded(texts: number, tokens: number, seconds: number): void;
  /** One slice of a reservation written and acknowledged. */
  committed(seconds: number): void;
  /** Chunks of a collection that ended an attempt in this state (failed = a retry is scheduled). */
  outcome(
    collection: string,
    state: "stored" | "unchanged" | "superseded" | "cancelled" | "failed" | "dead",
    count: number,
  ): void;
}

const NO_METRICS: PipelineMetrics = {
  batchReserved() {},
  embedded() {},
  committed() {},
  outcome() {},
};

/** The served models, as the pipeline picks one per collection (embedder/model-roster.ts). */
export interface PipelineModels {
  readonly default: ServedModel;
  byFingerprint(fingerprint: string): ServedModel | undefined;
}

/** A served model, loaded, with the embedder that isolates poisonous texts for it. */
interface EmbeddingModel {
  info: ModelInfo;
  isolating: IsolatingEmbedder;
}

/** How long the model chosen for a collection is remembered: a cutover points its name elsewhere. */
const COLLECTION_MODEL_TTL_MS = 1_000;
/** How long chunks for a version that does not exist yet wait before they are tried again. */
const VERSION_WAIT_MS = 5_000;
/** Collections whose model is remembered at once; beyond it the oldest is read again when used. */
const MAX_REMEMBERED_COLLECTIONS = 10_000;

export interface PipelineDeps {
  queue: JobQueue;
  store: VectorStore;
  /** The default model's embedder; the only one without `models`. */
  embedder: Embedder;
  /** Several served models: each collection's chunks are embedded by the model its binding names. */
  models?: PipelineModels;
  committer: BatchCommitter;
  throughput: ThroughputMeter;
  logger: Logger;
  metrics?: PipelineMetrics;
}

/**
 * The ingest loop: reserve → plan (point-planner.ts) → embed → store + ack, slice by slice within a
 * reservation, with up to `maxParallelTasks` reservations in flight.
 * It talks to interfaces only; main.ts decides what stands behind them.
 */
export class IngestPipeline {
  private running = false;
  private loopDone: Promise<void> = Promise.resolve();
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly rateLimiter: RateLimiter;
  /** Collections ensured, with the fingerprint of the binding they were ensured for. */
  private readonly ensuredCollections = new Map<string, string>();
  private wake: (() => void) | null = null;
  private readonly log: Logger;
  private readonly metrics: PipelineMetrics;
  /** Per embedder: embeds a reservation's chunks so that one poisonous text fails only itself. */
  private readonly isolating = new WeakMap<Embedder, IsolatingEmbedder>();
  /** The model each collection's chunks are embedded with, and since when that is known. */
  private readonly collectionModels = new Map<string, { at: number; model: EmbeddingModel }>();

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
        // Idle: replacements whose cleanup failed after their last batch (a store outage) retry here.
        if (this.inFlight.size === 0) await this.finalizeReplacements();
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

  /**
   * One reservation, committed slice by slice: its chunks are planned together, then sorted by
   * length and cut into slices of about `sliceMaxTokens` (progress-slices.ts); each slice is stored
   * and acknowledged as soon as it is embedded, while the next one embeds. The lease keeps the
   * chunks not acknowledged yet, so a crash redoes only those, and the queue size, the job counts and
   * the throughput move a slice at a time.
   */
  private async process(lease: Lease): Promise<void> {
    const run: ReservationRun = {
      lease,
      bySeq: new Map(lease.chunks.map((c) => [c.seq, c])),
      settled: new Set(),
      outcomes: new Map(),
      tokens: 0,
      slices: 0,
      broken: null,
    };
    const started = performance.now();
    const renewEvery = Math.max(250, Math.floor(this.options.leaseMs / 3));
    const renewTimer = setInterval(() => {
      this.deps.queue.renew(lease.id, this.options.leaseMs).then(
        (held) => {
          // Nothing left to hold once every slice is settled: that is no lost lease.
          if (!held && run.settled.size < lease.chunks.length)
            this.log.warn(
              { leaseId: lease.id },
              "lease lost while processing; another worker may take these chunks, and the store keeps the newest version",
            );
        },
        (error: unknown) => this.log.warn({ err: error, leaseId: lease.id }, "lease renewal failed"),
      );
    }, renewEvery);
    this.metrics.batchReserved(lease.chunks.length);
    this.log.debug(
      {
        leaseId: lease.id,
        chunks: lease.chunks.length,
        jobs: [...new Set(lease.chunks.map((c) => c.jobId))],
      },
      "batch reserved",
    );
    try {
      const plan = await this.plan(lease.chunks);
      // Chunks their collection refused (bound to another model): dead letters, one call per cause.
      for (const [error, group] of groupByError(plan.refused))
        await this.handleFailure(lease, error, group, run);
      // Chunks that need no embedding (unchanged, superseded, payload only) are committed at once.
      let committing =
        plan.ready.length > 0
          ? this.commitSlice(run, { chunks: plan.ready, tokens: 0, failed: [] }, Date.now())
          : Promise.resolve();
      const slices = sliceByTokens(plan.toEmbed, (p) => p.chunk.estimatedTokens, this.options.sliceMaxTokens);
      for (const slice of slices) {
        if (run.broken !== null) break;
        const sliceStartedAt = Date.now();
        let embedded: PreparedSlice;
        try {
          embedded = await this.prepare(slice, plan.models);
        } catch (error) {
          // Not one text's fault (each was tried alone): the slice retries. An outage (or the embedder
          // closing at shutdown) fails every text alike, so the rest of the reservation retries with
          // it instead of hammering the engine slice after slice.
          await committing;
          if (error instanceof ProcessingError && (error.outage || error.expected)) {
            run.broken = error;
            break;
          }
          await this.handleFailure(
            lease,
            error,
            slice.map((p) => p.chunk),
            run,
          );
          continue;
        }
        // Commits run in slice order, one at a time, each while the next slice embeds.
        await committing;
        if (run.broken !== null) break;
        committing = this.commitSlice(run, embedded, sliceStartedAt);
      }
      await committing;
      if (run.broken !== null) {
        const rest = lease.chunks.filter((c) => !run.settled.has(c.seq));
        if (rest.length > 0) await this.handleFailure(lease, run.broken, rest, run);
      }
      const count = (state: string) => run.outcomes.get(state) ?? 0;
      this.log.info(
        {
          leaseId: lease.id,
          jobs: [...new Set(lease.chunks.map((c) => c.jobId))],
          chunks: lease.chunks.length,
          slices: run.slices,
          stored: count("stored"),
          unchanged: count("unchanged"),
          superseded: count("superseded"),
          cancelled: count("cancelled"),
          tokens: run.tokens,
          ms: Math.round(performance.now() - started),
        },
        "batch committed",
      );
      await this.finalizeReplacements();
    } catch (error) {
      // Planning failed (the store or the queue did not answer): whatever the lease still holds retries.
      const rest = lease.chunks.filter((c) => !run.settled.has(c.seq));
      if (rest.length > 0) await this.handleFailure(lease, error, rest, run);
    } finally {
      clearInterval(renewTimer);
    }
  }

  /**
   * Stores and acknowledges one embedded slice; the rest of the lease stays held. Never throws: a
   * failed commit retries the slice's chunks and marks the reservation broken (the store or the
   * queue refused; the next slices would meet the same), so its unstarted slices retry too.
   */
  private async commitSlice(run: ReservationRun, slice: PreparedSlice, startedAt: number): Promise<void> {
    const { lease, bySeq } = run;
    const commitStarted = performance.now();
    try {
      const { fenced, acked, changed } = await this.deps.committer.commit({
        leaseId: lease.id,
        chunks: slice.chunks,
        retryChanged: { delayMs: this.options.retryBaseMs, maxAttempts: this.options.maxAttempts },
      });
      for (const seq of [...fenced, ...changed]) run.settled.add(seq);
      for (const outcome of acked) run.settled.add(outcome.seq);
      const named = (seqs: number[]) => seqs.slice(0, 20).map((seq) => bySeq.get(seq)?.chunkId);
      if (fenced.length > 0) {
        // Another worker took these chunks when this lease lapsed; its results are the ones that count.
        this.log.warn(
          { leaseId: lease.id, chunkIds: named(fenced), chunks: fenced.length },
          "lease lapsed while processing; these chunks belong to another worker now and were not written",
        );
      }
      if (changed.length > 0) {
        this.log.info(
          { leaseId: lease.id, chunkIds: named(changed), chunks: changed.length },
          "chunks changed in the store after they were planned; retrying them shortly",
        );
      }
      this.metrics.committed((performance.now() - commitStarted) / 1000);
      const collectionOf = (seq: number) => bySeq.get(seq)?.collection ?? "";
      for (const outcome of acked) {
        this.metrics.outcome(collectionOf(outcome.seq), outcome.state, 1);
        run.outcomes.set(outcome.state, (run.outcomes.get(outcome.state) ?? 0) + 1);
      }
      for (const seq of changed) this.metrics.outcome(collectionOf(seq), "failed", 1);
      // Per slice, so the rate is there within a slice of work starting, not a reservation.
      this.deps.throughput.record(acked.length, slice.tokens, startedAt);
      run.tokens += slice.tokens;
      run.slices += 1;
    } catch (error) {
      run.broken ??= error;
      const chunks = slice.chunks.flatMap((c) => bySeq.get(c.seq) ?? []);
      await this.handleFailure(lease, error, chunks, run);
    }
    // Chunks that failed alone (the rest of their slice is committed) retry or die on their own.
    for (const { chunk, error } of slice.failed) await this.handleFailure(lease, error, [chunk], run);
  }

  /**
   * Document replacements whose jobs are done: their documents' points older than the job go
   * (chunks no longer in them, windows no longer needed). Only while the replacement is still the
   * newest word on the document: a newer replace or a delete does its own cleanup. Idempotent, so
   * two workers finalizing one job at once, or a crash half way, leave the same result.
   */
  private async finalizeReplacements(): Promise<void> {
    try {
      for (const job of await this.deps.queue.pendingFinalizations(FINALIZATIONS_PER_BATCH)) {
        const floors = await this.deps.queue.documentFloors(job.collection, job.documents);
        let deletedPoints = 0;
        const deletedChunkIds: string[] = [];
        for (const documentId of job.documents) {
          if (floors.get(documentId)?.version !== job.version) continue;
          const deletion = await this.deps.store.deleteDocument(job.collection, documentId, job.version);
          deletedPoints += deletion.deleted;
          deletedChunkIds.push(...deletion.chunkIds);
        }
        await this.deps.queue.completeFinalization(job.jobId, { deletedPoints, deletedChunkIds });
        if (deletedPoints > 0) {
          this.log.info(
            { jobId: job.jobId, documents: job.documents.length, deletedPoints },
            "documents replaced: their old points deleted",
          );
        }
      }
    } catch (error) {
      // Left pending: the next batch (or the next worker) finalizes it.
      this.log.warn({ err: error }, "could not finalize document replacements yet; retrying later");
    }
  }

  /** Plans each collection's chunks from the fingerprints stored for them: what is ready, what to embed. */
  private async plan(chunks: QueuedChunk[]): Promise<ReservationPlan> {
    const models = new Map<string, EmbeddingModel>();
    const refused: FailedChunk[] = [];
    const byCollection = new Map<string, QueuedChunk[]>();
    for (const chunk of chunks) {
      const list = byCollection.get(chunk.collection) ?? [];
      list.push(chunk);
      byCollection.set(chunk.collection, list);
    }

    const ready: PlannedChunk[] = [];
    const toEmbed: EmbedPlan[] = [];
    for (const [collection, list] of byCollection) {
      let info: ModelInfo;
      try {
        const model = await this.modelFor(collection);
        if (model === null) {
          // A version only its re-embed creates (bound to the model it names): chunks queued for
          // it before it exists (a crash between the two steps) wait for it instead of creating it
          // bound to the default model, which would refuse every copy.
          const waiting = new ProcessingError(
            `version "${collection}" does not exist yet: its re-embed creates it (POST .../reembed again after a crash)`,
            { retryable: true, expected: true, retryAfterMs: VERSION_WAIT_MS },
          );
          for (const chunk of list) refused.push({ chunk, error: waiting });
          continue;
        }
        models.set(collection, model);
        info = model.info;
        await this.ensureCollection(collection, info.dimension, bindingFor(info));
      } catch (error) {
        // A collection bound to another model (or shape) refuses its own chunks only; the rest of
        // the reservation goes on.
        if (!(error instanceof AppError) || !REFUSED_BY_COLLECTION.has(error.code)) throw error;
        for (const chunk of list) refused.push({ chunk, error });
        continue;
      }
      const stored = await this.deps.store.fingerprints(
        collection,
        list.map((c) => pointId(collection, c.chunkId)),
      );
      const documents = [...new Set(list.flatMap((c) => (c.documentId === null ? [] : [c.documentId])))];
      const floors =
        documents.length === 0 ? new Map() : await this.deps.queue.documentFloors(collection, documents);
      const plan = planChunks(list, info, stored, floors);
      ready.push(...plan.ready);
      toEmbed.push(...plan.toEmbed);
    }
    return { ready, toEmbed, refused, models };
  }

  /**
   * The model that embeds `collection`'s chunks: the served model its binding names, else the
   * default (a new collection is created bound to it; one bound to a model not served refuses the
   * chunks in ensureCollection). Read again after a second: a cutover points the name elsewhere.
   */
  private async modelFor(collection: string): Promise<EmbeddingModel | null> {
    const known = this.collectionModels.get(collection);
    if (known !== undefined && Date.now() - known.at < COLLECTION_MODEL_TTL_MS) return known.model;
    let served: ServedModel = this.deps.models?.default ?? { embedder: this.deps.embedder, info: null };
    const isVersion = logicalName(collection) !== collection;
    if (this.deps.models !== undefined || isVersion) {
      const description = await this.deps.store.describeCollection(collection);
      if (description === null && isVersion) return null;
      const binding = description?.binding;
      served = (binding ? this.deps.models?.byFingerprint(binding.fingerprint) : undefined) ?? served;
    }
    const model = {
      info: served.info ?? served.embedder.info(),
      isolating: this.isolatingFor(served.embedder),
    };
    this.collectionModels.set(collection, { at: Date.now(), model });
    if (this.collectionModels.size > MAX_REMEMBERED_COLLECTIONS) {
      const oldest = this.collectionModels.keys().next().value;
      if (oldest !== undefined) this.collectionModels.delete(oldest);
    }
    return model;
  }

  private isolatingFor(embedder: Embedder): IsolatingEmbedder {
    let isolating = this.isolating.get(embedder);
    if (!isolating) {
      isolating = new IsolatingEmbedder(embedder, this.log);
      this.isolating.set(embedder, isolating);
    }
    return isolating;
  }

  /** Embeds one slice's chunks; chunks that fail alone are returned as failed, the rest as planned. */
  private async prepare(
    toEmbed: EmbedPlan[],
    models: ReadonlyMap<string, EmbeddingModel>,
  ): Promise<PreparedSlice> {
    const planned: PlannedChunk[] = [];
    const failed: FailedChunk[] = [];
    let tokens = 0;
    // One embedder call per model in the slice (one, unless the reservation spans collections of
    // several models), each in the slice's length order.
    const byModel = new Map<EmbeddingModel, EmbedPlan[]>();
    for (const plan of toEmbed) {
      const model = models.get(plan.chunk.collection);
      if (model === undefined) throw new Error(`no model chosen for collection ${plan.chunk.collection}`);
      const group = byModel.get(model) ?? [];
      group.push(plan);
      byModel.set(model, group);
    }
    for (const [{ info, isolating }, group] of byModel) {
      const embedStarted = performance.now();
      const results = await isolating.embedPassages(group.map((e) => e.chunk));
      const embedSeconds = (performance.now() - embedStarted) / 1000;
      const truncated: Array<{ jobId: string; chunkId: string; truncatedTokens: number }> = [];
      let groupTokens = 0;
      group.forEach((plan, index) => {
        const embedded = results[index];
        if (!embedded || "error" in embedded) {
          failed.push({ chunk: plan.chunk, error: embedded?.error ?? new Error("no embedding returned") });
          return;
        }
        const done = embeddedChunk(plan, embedded, info);
        planned.push(done.planned);
        groupTokens += done.tokens;
        if (embedded.truncatedTokens > 0) {
          truncated.push({
            jobId: plan.chunk.jobId,
            chunkId: plan.chunk.chunkId,
            truncatedTokens: embedded.truncatedTokens,
          });
        }
      });
      // One line per slice, naming every truncated chunk: a line per chunk costs real time when
      // half a corpus is over the limit, and the receipts hold the per-chunk counts anyway.
      if (truncated.length > 0) {
        this.log.warn(
          { truncated: truncated.length, chunks: truncated },
          "chunks longer than the model's limit were truncated (overflow policy truncate)",
        );
      }
      tokens += groupTokens;
      this.metrics.embedded(group.length, groupTokens, embedSeconds);
    }
    return { chunks: planned, tokens, failed };
  }

  /** Creates the collection bound to the model, or checks (adopting an unbound one) that it is. */
  private async ensureCollection(
    collection: string,
    dimension: number,
    binding: ModelBinding,
  ): Promise<void> {
    if (this.ensuredCollections.get(collection) === binding.fingerprint) return;
    await this.deps.store.ensureCollection({
      name: collection,
      dimension,
      distance: this.options.distance,
      binding,
    });
    this.ensuredCollections.set(collection, binding.fingerprint);
  }

  private async handleFailure(
    lease: Lease,
    error: unknown,
    chunks: QueuedChunk[],
    run: ReservationRun,
  ): Promise<void> {
    for (const chunk of chunks) run.settled.add(chunk.seq);
    if (error instanceof AppError && error.code === "collection_not_found") {
      // The collection was deleted behind our back (an operator, another tool): create it again on
      // the retry instead of failing every batch for it until the process restarts.
      for (const chunk of chunks) {
        this.ensuredCollections.delete(chunk.collection);
        this.collectionModels.delete(chunk.collection);
      }
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

interface FailedChunk {
  chunk: QueuedChunk;
  error: unknown;
}

/** Errors of ensureCollection that concern one collection, not the store as a whole. */
const REFUSED_BY_COLLECTION: ReadonlySet<string> = new Set(["model_mismatch", "dimension_mismatch"]);

function groupByError(failed: readonly FailedChunk[]): Map<unknown, QueuedChunk[]> {
  const groups = new Map<unknown, QueuedChunk[]>();
  for (const { chunk, error } of failed) groups.set(error, [...(groups.get(error) ?? []), chunk]);
  return groups;
}

/** A reservation planned: what is ready, what to embed, and the chunks their collection refused. */
interface ReservationPlan extends Plan {
  refused: FailedChunk[];
  /** The model each collection of the reservation is embedded with. */
  models: Map<string, EmbeddingModel>;
}

/** One slice, embedded: what to commit, its tokens, and the chunks that failed alone. */
interface PreparedSlice {
  chunks: PlannedChunk[];
  tokens: number;
  failed: FailedChunk[];
}

/** What one reservation's slices share while it is processed. */
interface ReservationRun {
  lease: Lease;
  bySeq: Map<number, QueuedChunk>;
  /** Seqs acknowledged, failed, or found to be another worker's: later failures leave them alone. */
  settled: Set<number>;
  /** Acknowledged outcomes per state, for the reservation's log line. */
  outcomes: Map<string, number>;
  tokens: number;
  /** Slices committed. */
  slices: number;
  /** Set when the rest of the reservation cannot succeed (an outage, a failed commit): it retries. */
  broken: unknown;
}
