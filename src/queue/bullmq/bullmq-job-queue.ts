import { randomUUID } from "node:crypto";
import { type Job as BullJob, type JobsOptions, Queue, UnrecoverableError, Worker } from "bullmq";
import type { ChunkReceipt, DeadLetter, DocumentFloor, Job, ReceiptState } from "../../domain/types.js";
import { FAIR_SHARE } from "../fair-ranks.js";
import type {
  ChunkOutcome,
  DeadLetterSelector,
  DocumentPage,
  EnqueueRequest,
  EnqueueResult,
  FailRequest,
  Finalization,
  JobListRequest,
  JobPage,
  JobQueue,
  Lease,
  MaintenanceResult,
  Page,
  PageRequest,
  QueueStats,
  ReserveRequest,
} from "../job-queue.js";
import { hashTaggedPrefix, openRedis, type RedisClient } from "../redis/redis-connection.js";
import {
  ADMIT,
  CONFIRM,
  DELETE_FLOOR,
  FINALIZED,
  NOT_FINISHED,
  ROLLBACK,
  runScript,
  STATE_CODES,
  TRANSITION,
} from "./accounting-scripts.js";
import { BullmqAdmission } from "./bullmq-admission.js";
import { BullmqDocuments } from "./bullmq-documents.js";
import { BullmqListings, range, STEP } from "./bullmq-listings.js";
import {
  bullJobId,
  type ChunkData,
  type Entry,
  KeyLayout,
  parseBullJobId,
  type Receipt,
  type Reply,
  toQueuedChunk,
} from "./bullmq-records.js";

export interface BullmqJobQueueOptions {
  /** `redis://host:port` or `redis-cluster://host:port[,host:port...]` (QUEUE_URL). */
  url: string;
  /** Key prefix; wrapped in a Redis Cluster hash tag (`{rag}`) when it has none. */
  prefix?: string;
  /** Serve reservations (a worker). An API-only process never holds locks or checks stalls. */
  consume?: boolean;
  /** Lease a reservation gets (BullMQ lockDuration) when the caller asks for nothing else. */
  lockDurationMs?: number;
  /** How often stalled jobs are looked for (BullMQ stalledInterval). */
  stalledIntervalMs?: number;
  maxStalls?: number;
  /** Attempts a chunk gets (BullMQ `attempts`); a FailRequest may end it sooner. */
  maxAttempts?: number;
  jobRetentionMs?: number;
  deadLetterRetentionMs?: number;
  fairShare?: number;
  /** How long an unconfirmed admission may wait before housekeeping settles it (default 5 min). */
  abandonedAdmissionMs?: number;
  /** Connection errors (the client reconnects by itself; commands fail meanwhile). */
  onError?: (error: Error) => void;
  /** A process that does not consume: how long one Redis command may take before it fails. */
  commandTimeoutMs?: number;
}

/** The BullMQ queue that holds one job per accepted chunk. */
const QUEUE_NAME = "chunks";
const DAY_MS = 86_400_000;
/** An admission unconfirmed for this long was abandoned by a process that died half way. */
const ABANDONED_ADMISSION_MS = 5 * 60_000;
const STALL_REASON = (n: number) =>
  `worker stopped while processing this chunk ${n} times (crash, kill or lease timeout)`;

interface Held {
  job: BullJob<ChunkData>;
  seq: number;
}

/**
 * The distributed queue on BullMQ: one BullMQ job per accepted chunk, so BullMQ's own machinery
 * does the queue's work: locks (leases), stalled-job recovery (`maxStalledCount`), retries with
 * backoff (`attempts`, a backoff strategy that honours the delay the pipeline asks for), the failed
 * set (dead letters; replay is `job.retry`), dedup by job id, `removeOnComplete`, priorities (fair
 * queuing). A worker fetches several jobs with `getNextJob` to fill a reservation. What BullMQ has
 * no notion of — a request of many chunks with per-chunk receipts, token totals, versions — is kept
 * beside it by the scripts in accounting-scripts.ts. See docs/redis-queue.md.
 */
export class BullmqJobQueue implements JobQueue {
  private readonly redis: RedisClient;
  private readonly prefix: string;
  /** The queue's own keys beside BullMQ's. */
  private readonly layout: KeyLayout;
  private readonly queue: Queue<ChunkData>;
  private readonly worker: Worker<ChunkData> | null;
  private readonly leases = new Map<string, Map<number, Held>>();
  private readonly lockDurationMs: number;
  private readonly maxAttempts: number;
  private readonly jobRetentionMs: number;
  private readonly deadLetterRetentionMs: number;
  private readonly fairShare: number;
  private readonly abandonedAdmissionMs: number;
  /** Document floors (a replace or delete) and the replacements whose old points are to go. */
  private readonly documents: BullmqDocuments;
  /** Accepting a request: its chunks, counters and floors recorded, then its BullMQ jobs added. */
  private readonly admission: BullmqAdmission;
  /** Stall bookkeeping in flight; a reservation waits for it so counts never go backwards. */
  private stallAccounting: Promise<unknown> = Promise.resolve();
  /** The read-only side: job, listings, receipts, dead letters, counters. */
  private readonly listings: BullmqListings;

  constructor(options: BullmqJobQueueOptions) {
    this.prefix = hashTaggedPrefix(options.prefix ?? "rag");
    this.layout = new KeyLayout(this.prefix);
    this.lockDurationMs = options.lockDurationMs ?? 60_000;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 5);
    this.jobRetentionMs = options.jobRetentionMs ?? 7 * DAY_MS;
    this.deadLetterRetentionMs = options.deadLetterRetentionMs ?? 30 * DAY_MS;
    this.fairShare = Math.max(1, Math.floor(options.fairShare ?? FAIR_SHARE));
    this.abandonedAdmissionMs = options.abandonedAdmissionMs ?? ABANDONED_ADMISSION_MS;
    const onError = options.onError;
    // Workers wait for Redis to come back instead of failing their loop (BullMQ's advice for
    // workers). An API process fails fast so that a client gets a 503 instead of a hung request:
    // while the connection is down commands are refused at once (BullMQ's advice for queues behind
    // an HTTP endpoint), not queued to run when Redis returns, after the client has given up; and a
    // Redis that accepts connections but does not answer (a frozen host) times out.
    this.redis = openRedis(
      options.url,
      options.consume
        ? { maxRetriesPerRequest: null }
        : {
            maxRetriesPerRequest: 1,
            enableOfflineQueue: false,
            commandTimeout: options.commandTimeoutMs ?? 10_000,
          },
    );
    this.redis.on("error", (error: Error) => onError?.(error));
    this.listings = new BullmqListings(this.redis, this.prefix);
    this.redis.defineCommand("ragAdmit", { lua: ADMIT });
    this.redis.defineCommand("ragConfirm", { lua: CONFIRM });
    this.redis.defineCommand("ragRollback", { lua: ROLLBACK });
    this.redis.defineCommand("ragTransition", { lua: TRANSITION });
    this.redis.defineCommand("ragDeleteFloor", { lua: DELETE_FLOOR });
    this.redis.defineCommand("ragFinalized", { lua: FINALIZED });
    const defaultJobOptions: JobsOptions = {
      attempts: this.maxAttempts,
      backoff: { type: "pipeline" },
      removeOnComplete: true,
      removeOnFail: false,
      stackTraceLimit: 0,
    };
    this.queue = new Queue<ChunkData>(QUEUE_NAME, {
      connection: this.redis,
      prefix: this.prefix,
      defaultJobOptions,
      // Nothing reads BullMQ's event stream; keep it short.
      streams: { events: { maxLen: 1000 } },
    });
    this.queue.on("error", (error: Error) => onError?.(error));
    this.documents = new BullmqDocuments({
      redis: this.redis,
      prefix: this.prefix,
      floorTtlMs: this.floorTtlMs(),
      runScript: (name, args) => this.call(name, ...args),
    });
    this.admission = new BullmqAdmission({
      queue: this.queue,
      // Through this.call, looked up at each call (a test stands in for one script there).
      runScript: (name, args) => this.call(name, ...args),
      prefix: this.prefix,
      fairShare: this.fairShare,
      floorTtlMs: this.floorTtlMs(),
    });
    this.worker = options.consume
      ? new Worker<ChunkData>(QUEUE_NAME, null, {
          connection: this.redis,
          prefix: this.prefix,
          autorun: false,
          lockDuration: this.lockDurationMs,
          stalledInterval:
            options.stalledIntervalMs ?? Math.min(15_000, Math.max(100, this.lockDurationMs / 4)),
          maxStalledCount: Math.max(0, (options.maxStalls ?? 5) - 1),
          settings: {
            // The pipeline decides the delay (Retry-After of a store, exponential backoff).
            backoffStrategy: (_attempts, _type, error) =>
              error instanceof RetryLater ? error.retryDelayMs : 1000,
          },
        })
      : null;
    if (this.worker) {
      this.worker.on("error", (error: Error) => onError?.(error));
      this.worker.on("stalled", (bullId: string) => {
        this.stallAccounting = this.stallAccounting.then(() => this.accountStall(bullId)).catch(() => {});
      });
      void this.worker.startStalledCheckTimer();
    }
  }

  /** The client the queue talks through, for the durability check at start-up. */
  get client(): RedisClient {
    return this.redis;
  }

  enqueue(request: EnqueueRequest): Promise<EnqueueResult> {
    return this.admission.enqueue(request);
  }

  async reserve(request: ReserveRequest): Promise<Lease | null> {
    const worker = this.requireWorker();
    await this.stallAccounting;
    const leaseId = randomUUID();
    const taken: Array<BullJob<ChunkData>> = [];
    const stalledToDeath: Array<BullJob<ChunkData>> = [];
    let tokens = 0;
    const maxChunks = Math.max(1, Math.floor(request.maxChunks));
    while (taken.length < maxChunks) {
      const job = (await worker.getNextJob(leaseId, { block: false })) as BullJob<ChunkData> | undefined;
      if (!job) break;
      if (job.deferredFailure) {
        // BullMQ saw it stall more than maxStalledCount times; failing it is the fetcher's job.
        stalledToDeath.push(job);
        continue;
      }
      // Stop at a chunk that does not fit rather than let smaller later ones overtake it: it goes
      // back to the front of its priority.
      if (taken.length > 0 && tokens + job.data.e > request.maxTokens) {
        await job.moveToWait(leaseId);
        break;
      }
      taken.push(job);
      tokens += job.data.e;
    }
    if (stalledToDeath.length > 0) await this.killStalled(stalledToDeath, leaseId);
    if (taken.length === 0) return null;
    if (request.leaseMs !== this.lockDurationMs) {
      await worker.extendJobLocks(
        taken.map((j) => String(j.id)),
        taken.map(() => leaseId),
        Math.max(1, Math.ceil(request.leaseMs)),
      );
    }
    const headRank = Math.max(...taken.map((j) => (j.opts.priority ?? 1) - 1));
    const statuses = await this.transition(
      leaseId,
      taken.map((job) => ({
        jobId: job.data.j,
        index: job.data.i,
        to: "r",
        allowed: NOT_FINISHED,
        lockMode: 1,
        seq: job.data.v,
        fields: null,
      })),
      headRank,
    );
    const held = new Map<number, Held>();
    const finishedAlready: Array<BullJob<ChunkData>> = [];
    taken.forEach((job, index) => {
      const status = statuses[index];
      if (status === "ok") held.set(job.data.v, { job, seq: job.data.v });
      else if (status?.startsWith("skip:")) finishedAlready.push(job);
    });
    // A chunk finished before (its worker died between recording and completing it): complete it.
    await Promise.all(
      finishedAlready.map((job) => job.moveToCompleted(null, leaseId, false).catch(() => {})),
    );
    if (held.size === 0) return null;
    this.leases.set(leaseId, held);
    return {
      id: leaseId,
      expiresAt: Date.now() + request.leaseMs,
      chunks: [...held.values()].map(({ job }) => toQueuedChunk(job)),
    };
  }

  async renew(leaseId: string, leaseMs: number): Promise<boolean> {
    const held = this.leases.get(leaseId);
    if (!held || held.size === 0 || !this.worker) return false;
    const jobs = [...held.values()];
    const failed = await this.worker.extendJobLocks(
      jobs.map((h) => String(h.job.id)),
      jobs.map(() => leaseId),
      Math.max(1, Math.ceil(leaseMs)),
    );
    return failed.length < jobs.length;
  }

  /** Outcomes for chunks this lease no longer holds are ignored (fencing). */
  async ack(leaseId: string, outcomes: ChunkOutcome[]): Promise<void> {
    const held = this.leases.get(leaseId);
    if (!held) return;
    const mine = outcomes.filter((o) => held.has(o.seq));
    if (mine.length === 0) return;
    const statuses = await this.transition(
      leaseId,
      mine.map((o) => {
        const { job } = held.get(o.seq)!;
        const fields =
          o.state === "stored"
            ? { k: o.tokens, tr: o.truncatedTokens, w: o.windows, m: o.model, pr: o.profile, er: null }
            : { m: o.model, pr: o.profile, er: null };
        return {
          jobId: job.data.j,
          index: job.data.i,
          to: STATE_CODES[o.state],
          allowed: "r",
          lockMode: 1 as const,
          seq: o.seq,
          fields,
        };
      }),
    );
    const done = mine.filter((_, i) => statuses[i] === "ok").map((o) => held.get(o.seq)!.job);
    for (const o of mine) held.delete(o.seq);
    if (held.size === 0) this.leases.delete(leaseId);
    // Recorded first, completed second: a crash in between re-delivers a finished chunk, which the
    // next reservation completes without processing it (its receipt is final).
    await Promise.all(done.map((job) => job.moveToCompleted(null, leaseId, false).catch(() => {})));
  }

  async fail(leaseId: string, request: FailRequest): Promise<void> {
    const held = this.leases.get(leaseId);
    if (!held) return;
    const mine = [...new Set(request.seqs)].filter((seq) => held.has(seq)).map((seq) => held.get(seq)!);
    if (mine.length === 0) return;
    const limit = (job: BullJob<ChunkData>) =>
      Math.min(request.maxAttempts, job.opts.attempts ?? this.maxAttempts);
    const dies = (job: BullJob<ChunkData>) => job.attemptsMade + 1 >= limit(job);
    const statuses = await this.transition(
      leaseId,
      mine.map(({ job, seq }) => ({
        jobId: job.data.j,
        index: job.data.i,
        to: dies(job) ? "d" : "f",
        allowed: "r",
        lockMode: 1,
        seq,
        fields: { a: job.attemptsMade + 1, er: request.error },
      })),
    );
    for (const { seq } of mine) held.delete(seq);
    if (held.size === 0) this.leases.delete(leaseId);
    await Promise.all(
      mine.map(({ job }, i) => {
        if (statuses[i] !== "ok") return undefined;
        const error = dies(job)
          ? new UnrecoverableError(request.error)
          : new RetryLater(request.error, Math.max(0, Math.ceil(request.retryDelayMs)));
        return job.moveToFailed(error, leaseId, false).catch(() => {});
      }),
    );
  }

  async release(leaseId: string): Promise<void> {
    const held = this.leases.get(leaseId);
    if (!held) return;
    this.leases.delete(leaseId);
    const jobs = [...held.values()];
    const statuses = await this.transition(
      leaseId,
      jobs.map(({ job, seq }) => ({
        jobId: job.data.j,
        index: job.data.i,
        to: "q",
        allowed: "r",
        lockMode: 1,
        seq,
        fields: null,
      })),
    );
    // Back to the front of their priority, in order, without counting an attempt or a stall.
    for (const [i, { job }] of [...jobs.entries()].reverse()) {
      if (statuses[i] === "ok") await job.moveToWait(leaseId).catch(() => 0);
    }
  }

  getJob(jobId: string): Promise<Job | null> {
    return this.listings.getJob(jobId);
  }

  documentFloors(collection: string, documentIds: string[]): Promise<Map<string, DocumentFloor>> {
    return this.documents.floors(collection, documentIds);
  }

  deleteDocument(collection: string, documentId: string): Promise<DocumentFloor> {
    return this.documents.delete(collection, documentId);
  }

  listDocuments(collection: string, request: { after?: string; limit: number }): Promise<DocumentPage> {
    return this.listings.listDocuments(collection, request);
  }

  pendingFinalizations(limit: number): Promise<Finalization[]> {
    return this.documents.pendingFinalizations(limit);
  }

  completeFinalization(
    jobId: string,
    result: { deletedPoints: number; deletedChunkIds: string[] },
  ): Promise<void> {
    return this.documents.completeFinalization(jobId, result);
  }

  listJobs(request: JobListRequest): Promise<JobPage> {
    return this.listings.listJobs(request);
  }

  async cancelJob(jobId: string): Promise<number | null> {
    const meta = await this.redis.hmget(this.layout.job(jobId).job, "total");
    if (meta[0] === null) return null;
    const total = Number(meta[0]);
    let cancelled = 0;
    for (let start = 0; start < total; start += STEP) {
      const indexes = range(start, Math.min(total, start + STEP));
      const receipts = await this.readReceipts(jobId, indexes);
      const waiting = indexes.filter((_, i) => receipts[i]?.s === "q" || receipts[i]?.s === "f");
      // BullMQ refuses to remove a job a worker holds (it runs on and finishes).
      const removed = await Promise.all(waiting.map((index) => this.queue.remove(bullJobId(jobId, index))));
      const statuses = await this.transition(
        "",
        waiting
          .filter((_, i) => removed[i] === 1)
          .map((index) => ({
            jobId,
            index,
            to: "c" as const,
            allowed: "qf",
            lockMode: 0 as const,
            seq: 0,
            fields: null,
          })),
      );
      cancelled += statuses.filter((st) => st === "ok").length;
    }
    return cancelled;
  }

  listChunks(jobId: string, request: PageRequest & { state?: ReceiptState }): Promise<Page<ChunkReceipt>> {
    return this.listings.listChunks(jobId, request);
  }

  listDeadLetters(request: PageRequest & { jobId?: string }): Promise<Page<DeadLetter>> {
    return this.listings.listDeadLetters(request);
  }

  /** Back to the queue with attempts reset (BullMQ `job.retry`), a page per step. */
  async replayDeadLetters(selector: DeadLetterSelector): Promise<number> {
    return this.listings.eachDeadLetterPage(selector, async (bullIds) => {
      const replayed: string[] = [];
      for (const bullId of bullIds) {
        const job = await this.queue.getJob(bullId);
        if (!job) continue;
        try {
          await job.retry("failed", { resetAttemptsMade: true, resetAttemptsStarted: true });
          replayed.push(bullId);
        } catch {
          // Not in the failed set (anymore): not a dead letter to replay.
        }
      }
      const statuses = await this.transition(
        "",
        replayed.map((bullId) => ({
          ...parseBullJobId(bullId),
          to: "q" as const,
          allowed: "d",
          lockMode: 0 as const,
          seq: 0,
          fields: { a: 0, er: null },
        })),
      );
      return statuses.filter((s) => s === "ok").length;
    });
  }

  /** Kept on record as discarded; the BullMQ job (and the chunk's text) is removed. */
  async discardDeadLetters(selector: DeadLetterSelector): Promise<number> {
    return this.listings.eachDeadLetterPage(selector, async (bullIds) => this.discard(bullIds, null));
  }

  stats(): Promise<QueueStats> {
    return this.listings.stats();
  }

  pendingInCollection(collection: string): Promise<number> {
    return this.listings.pendingInCollection(collection);
  }

  async nextAvailableInMs(): Promise<number | null> {
    const counts = await this.queue.getJobCounts("wait", "prioritized");
    if ((counts.wait ?? 0) + (counts.prioritized ?? 0) > 0) return 0;
    // BullMQ scores a delayed job by its due time in ms × 4096 (plus a counter).
    const [, score] = await this.redis.zrange(this.queue.keys.delayed ?? "", 0, 0, "WITHSCORES");
    if (score === undefined) return null;
    return Math.max(0, Math.floor(Number(score) / 4096) - Date.now());
  }

  /**
   * Bounded housekeeping: roll back admissions abandoned half way, discard dead letters past their
   * retention, and drop expired jobs from the job index. Job records and receipts expire by
   * themselves (Redis TTL set when a job finishes), completed BullMQ jobs are removed at once.
   */
  async maintain(): Promise<MaintenanceResult> {
    const now = Date.now();
    for (const jobId of await this.redis.zrangebyscore(
      this.layout.queue("admitting"),
      "-inf",
      now - this.abandonedAdmissionMs,
      "LIMIT",
      0,
      50,
    )) {
      await this.admission.settle(jobId);
    }
    const expiredDead = await this.redis.zrangebyscore(
      this.layout.queue("dead-t"),
      "-inf",
      now - this.deadLetterRetentionMs,
      "LIMIT",
      0,
      STEP,
    );
    const expiredDeadLetters = await this.discard(expiredDead, "expired after DEAD_LETTER_RETENTION");
    // Index entries of jobs whose record expired; the oldest first, a step at a time.
    const oldest = await this.redis.zrangebyscore(
      this.layout.queue("jobs"),
      "-inf",
      now - this.jobRetentionMs,
      "LIMIT",
      0,
      STEP,
    );
    const gone: string[] = [];
    for (const jobId of oldest)
      if ((await this.redis.exists(this.layout.job(jobId).job)) === 0) gone.push(jobId);
    if (gone.length > 0) await this.redis.zrem(this.layout.queue("jobs"), ...gone);
    return { expiredJobs: gone.length, expiredDeadLetters };
  }

  async close(): Promise<void> {
    await this.worker?.close(true).catch(() => {});
    await this.queue.close().catch(() => {});
    await this.redis.quit().catch(() => this.redis.disconnect());
  }

  private async discard(bullIds: string[], reason: string | null): Promise<number> {
    if (bullIds.length === 0) return 0;
    const statuses = await this.transition(
      "",
      bullIds.map((bullId) => ({
        ...parseBullJobId(bullId),
        to: "x" as const,
        allowed: "d",
        lockMode: 0 as const,
        seq: 0,
        fields: reason === null ? null : { er: reason },
      })),
    );
    const discarded = bullIds.filter((_, i) => statuses[i] === "ok" || statuses[i] === "missing");
    // The receipt says discarded first; then the chunk's text goes with its BullMQ job.
    await Promise.all(discarded.map((bullId) => this.queue.remove(bullId).catch(() => 0)));
    // Retention counts what it removed; an operator's discard only what was still a dead letter.
    return statuses.filter((s) => s === "ok" || (reason !== null && s === "missing")).length;
  }

  /** Chunks BullMQ found stalled past maxStalledCount: dead letters with the stall count. */
  private async killStalled(jobs: Array<BullJob<ChunkData>>, leaseId: string): Promise<void> {
    const reasons = jobs.map((job) => STALL_REASON(job.stalledCounter));
    const statuses = await this.transition(
      leaseId,
      jobs.map((job, i) => ({
        jobId: job.data.j,
        index: job.data.i,
        to: "d" as const,
        allowed: NOT_FINISHED,
        lockMode: 1 as const,
        seq: job.data.v,
        fields: { er: reasons[i] ?? "", a: job.attemptsMade },
      })),
    );
    await Promise.all(
      jobs.map((job, i) =>
        statuses[i] === "ok" || statuses[i]?.startsWith("skip:")
          ? job.moveToFailed(new UnrecoverableError(reasons[i] ?? ""), leaseId, false).catch(() => {})
          : undefined,
      ),
    );
  }

  /** A chunk BullMQ took back from a worker that lost its lock: queued again, unless re-taken. */
  private async accountStall(bullId: string): Promise<void> {
    const { jobId, index } = parseBullJobId(bullId);
    await this.transition("", [
      {
        jobId,
        index,
        to: "q",
        allowed: "r",
        lockMode: 2,
        seq: 0,
        fields: null,
        lockKey: this.lockKeyOf(bullId),
      },
    ]);
  }

  private async transition(
    token: string,
    entries: Array<Entry & { lockKey?: string }>,
    headRank = 0,
  ): Promise<string[]> {
    if (entries.length === 0) return [];
    const slots = new Map<string, number>();
    const keys: string[] = [
      this.layout.queue("stats"),
      this.layout.queue("dead"),
      this.layout.queue("dead-t"),
      this.layout.queue("active"),
      this.layout.queue("finalize"),
    ];
    for (const e of entries) {
      if (slots.has(e.jobId)) continue;
      slots.set(e.jobId, slots.size + 1);
      const k = this.layout.job(e.jobId);
      keys.push(k.job, k.receipts, k.jobDead);
    }
    const args: Array<string | number> = [
      Date.now(),
      token,
      this.jobRetentionMs,
      this.deadLetterRetentionMs,
      headRank,
      slots.size,
      entries.length,
    ];
    for (const e of entries) {
      const bullId = bullJobId(e.jobId, e.index);
      let lockIdx = 0;
      if (e.lockMode !== 0) {
        keys.push(e.lockKey ?? this.lockKeyOf(bullId));
        lockIdx = keys.length;
      }
      args.push(
        slots.get(e.jobId) ?? 0,
        e.index,
        e.to,
        e.allowed,
        e.lockMode,
        lockIdx,
        bullId,
        e.seq,
        e.fields === null ? "" : JSON.stringify(e.fields),
      );
    }
    args.push(...slots.keys());
    const reply = (await this.call("ragTransition", keys.length, ...keys, ...args)) as Reply[];
    return reply.map(String);
  }

  private readReceipts(jobId: string, indexes: number[]): Promise<Array<Receipt | null>> {
    return this.listings.readReceipts(jobId, indexes);
  }

  private call(name: string, ...args: Array<string | number>): Promise<unknown> {
    return runScript(this.redis, name, args);
  }

  private requireWorker(): Worker<ChunkData> {
    if (!this.worker) throw new Error("this queue instance does not consume (consume: false)");
    return this.worker;
  }

  private floorTtlMs(): number {
    return this.jobRetentionMs + this.deadLetterRetentionMs;
  }

  /** BullMQ's lock of a job: `<prefix>:<queue>:<jobId>:lock`, holding the fetching token. */
  private lockKeyOf(bullId: string): string {
    return `${this.queue.toKey(bullId)}:lock`;
  }
}

/** A failed attempt to retry after `retryDelayMs` (read by the worker's backoff strategy). */
class RetryLater extends Error {
  constructor(
    message: string,
    readonly retryDelayMs: number,
  ) {
    super(message);
    this.name = "RetryLater";
  }
}
