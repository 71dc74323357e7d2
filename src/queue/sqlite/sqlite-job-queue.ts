import { randomUUID } from "node:crypto";
import type {
  ChunkReceipt,
  DeadLetter,
  Job,
  Payload,
  QueuedChunk,
  ReceiptState,
} from "../../domain/types.js";
import type { SqliteDatabase } from "../../storage/sqlite-database.js";
import { toJobCounts, toJobState } from "../job-counts.js";
import type {
  ChunkOutcome,
  DeadLetterSelector,
  EnqueueRequest,
  EnqueueResult,
  FailRequest,
  JobQueue,
  Lease,
  Page,
  PageRequest,
  QueueStats,
  ReserveRequest,
} from "../job-queue.js";
import { type ChunkTransition, CounterDeltas } from "./counter-deltas.js";
import { defaultLeaseOwner, isOrphanedOwner } from "./lease-owner.js";
import { createQueueSchema } from "./queue-schema.js";
import {
  type CandidateRow,
  type CountersRow,
  type DeadLetterRow,
  type FailureRow,
  type JobRow,
  type MovedRow,
  prepareQueueStatements,
  type QueueStatements,
  type ReceiptRow,
  type ReclaimedRow,
} from "./queue-statements.js";

export interface SqliteJobQueueOptions {
  /** Written on every lease; `${hostname}:${pid}` lets a restarted process release its orphans. */
  ownerId?: string;
  /** Clock in ms, injectable so tests can expire leases and delays without sleeping. */
  now?: () => number;
  /**
   * Times a chunk may be taken back from a worker that died or lost its lease before it becomes a
   * dead letter (default 5). A graceful release does not count.
   */
  maxStalls?: number;
}

const DEFAULT_MAX_STALLS = 5;
/** Bounds of a page of receipts or dead letters. */
const MAX_PAGE = 1000;

/** Dead letters listed per job (`failures`); the count in `counts.dead` is always exact. */
const MAX_LISTED_FAILURES = 1000;
/**
 * Upper bound on queued rows inspected per reservation. Rows are skipped only while an older version
 * of the same chunk is in flight, which resolves by itself; the cap keeps a pathological backlog of
 * skipped rows from holding the write lock for a full-table scan.
 */
const MAX_SCANNED_PER_RESERVE = 10_000;

/**
 * The embedded queue: chunks, jobs and counters in the caller's SQLite file. Every state change is
 * one transaction that also fixes the counters, and writes use BEGIN IMMEDIATE so that several
 * processes sharing the file (WAL + busy_timeout) serialise instead of failing on lock upgrades.
 */
export class SqliteJobQueue implements JobQueue {
  private readonly db: SqliteDatabase;
  private readonly ownerId: string;
  private readonly now: () => number;
  private readonly sql: QueueStatements;
  private readonly maxStalls: number;

  constructor(db: SqliteDatabase, options: SqliteJobQueueOptions = {}) {
    this.db = db;
    this.ownerId = options.ownerId ?? defaultLeaseOwner();
    this.now = options.now ?? Date.now;
    const maxStalls = options.maxStalls ?? DEFAULT_MAX_STALLS;
    this.maxStalls = Number.isFinite(maxStalls) ? Math.max(1, Math.floor(maxStalls)) : DEFAULT_MAX_STALLS;
    createQueueSchema(db);
    this.sql = prepareQueueStatements(db);
    this.recoverOrphans();
  }

  async enqueue(request: EnqueueRequest): Promise<EnqueueResult> {
    return this.db.transaction(() => this.enqueueInTransaction(request)).immediate();
  }

  async reserve(request: ReserveRequest): Promise<Lease | null> {
    return this.db.transaction(() => this.reserveInTransaction(request)).immediate();
  }

  async renew(leaseId: string, leaseMs: number): Promise<boolean> {
    const now = this.now();
    return this.sql.renew.run(now + leaseMs, now, leaseId).changes > 0;
  }

  async held(leaseId: string, seqs: number[]): Promise<number[]> {
    return this.heldSync(leaseId, seqs);
  }

  /** Synchronous `held`, for the embedded commit that checks the lease inside its transaction. */
  heldSync(leaseId: string, seqs: number[]): number[] {
    return uniqueSeqs(seqs).filter((seq) => this.sql.held.get(seq, leaseId) !== undefined);
  }

  async ack(leaseId: string, outcomes: ChunkOutcome[]): Promise<void> {
    this.ackSync(leaseId, outcomes);
  }

  /**
   * Synchronous ack, for the embedded pipeline that commits the vector upsert and the ack in one
   * outer transaction (here it becomes a savepoint). Outcomes for chunks this lease no longer holds
   * are ignored: that is the fencing that keeps a slow worker from overwriting a newer reservation.
   */
  ackSync(leaseId: string, outcomes: ChunkOutcome[]): void {
    this.db
      .transaction(() => {
        const now = this.now();
        const deltas = new CounterDeltas();
        for (const outcome of outcomes) {
          const stored = outcome.state === "stored";
          const row = this.sql.ackOne.get(
            outcome.state,
            stored ? outcome.tokens : null,
            stored ? outcome.truncatedTokens : null,
            stored ? outcome.windows : null,
            outcome.model,
            outcome.profile,
            now,
            outcome.seq,
            leaseId,
          );
          if (row !== undefined) deltas.record(row.job_id, `running>${outcome.state}`, row.est_tokens);
        }
        deltas.flush(this.sql, now);
      })
      .immediate();
  }

  async fail(leaseId: string, request: FailRequest): Promise<void> {
    this.db
      .transaction(() => {
        const now = this.now();
        const deltas = new CounterDeltas();
        for (const seq of request.seqs) {
          const row = this.sql.held.get(seq, leaseId);
          if (row === undefined) continue;
          if (row.attempts + 1 >= request.maxAttempts) {
            this.sql.kill.run(request.error, now, now, seq);
            deltas.record(row.job_id, "running>dead", row.est_tokens);
          } else {
            this.sql.retry.run(now + Math.max(0, request.retryDelayMs), request.error, now, seq);
            deltas.record(row.job_id, "running>queued", row.est_tokens);
          }
        }
        deltas.flush(this.sql, now);
      })
      .immediate();
  }

  async release(leaseId: string): Promise<void> {
    this.db
      .transaction(() => {
        const now = this.now();
        this.requeue(
          this.sql.release.all(now, leaseId).map((row) => ({ ...row, state: "queued" as const })),
          now,
        );
      })
      .immediate();
  }

  async getJob(jobId: string): Promise<Job | null> {
    // Deferred transaction: job row and failure list come from one snapshot.
    return this.db.transaction(() => {
      const row = this.sql.job.get(jobId);
      if (row === undefined) return null;
      const failures = row.dead === 0 ? [] : this.sql.failures.all(jobId, MAX_LISTED_FAILURES);
      const retrying = row.queued === 0 ? 0 : (this.sql.retryingOfJob.get(jobId)?.n ?? 0);
      return toJob(row, failures, retrying);
    })();
  }

  async listChunks(
    jobId: string,
    request: PageRequest & { state?: ReceiptState },
  ): Promise<Page<ChunkReceipt>> {
    const after = pageAfter(request.after);
    const limit = pageLimit(request.limit);
    let rows: ReceiptRow[];
    if (request.state === undefined) rows = this.sql.receipts.all(jobId, after, limit + 1);
    else if (request.state === "queued") rows = this.sql.receiptsQueued.all(jobId, after, limit + 1);
    else if (request.state === "failed") rows = this.sql.receiptsFailed.all(jobId, after, limit + 1);
    else rows = this.sql.receiptsInState.all(jobId, request.state, after, limit + 1);
    return toPage(rows, limit, toReceipt);
  }

  async listDeadLetters(request: PageRequest & { jobId?: string }): Promise<Page<DeadLetter>> {
    const after = pageAfter(request.after);
    const limit = pageLimit(request.limit);
    const rows =
      request.jobId === undefined
        ? this.sql.deadLetters.all(after, limit + 1)
        : this.sql.deadLettersOfJob.all(request.jobId, after, limit + 1);
    return toPage(rows, limit, toDeadLetter);
  }

  /**
   * Dead letters back to queued, attempts and stalls reset, available at once. A dead letter with a
   * newer version of the same chunk queued, running or written stays dead: replaying it would put
   * the stale text over the newer one. Discard it instead.
   */
  async replayDeadLetters(selector: DeadLetterSelector): Promise<number> {
    return this.db
      .transaction(() => {
        const now = this.now();
        let rows: MovedRow[];
        if ("all" in selector) rows = this.sql.replayAll.all(now, now);
        else if ("jobId" in selector) rows = this.sql.replayJob.all(now, now, selector.jobId);
        else rows = uniqueSeqs(selector.seqs).flatMap((seq) => this.sql.replaySeq.all(now, now, seq));
        return this.count(rows, "dead>queued", now);
      })
      .immediate();
  }

  async discardDeadLetters(selector: DeadLetterSelector): Promise<number> {
    return this.db
      .transaction(() => {
        const now = this.now();
        let rows: MovedRow[];
        if ("all" in selector) rows = this.sql.discardAll.all(now);
        else if ("jobId" in selector) rows = this.sql.discardJob.all(now, selector.jobId);
        else rows = uniqueSeqs(selector.seqs).flatMap((seq) => this.sql.discardSeq.all(now, seq));
        return this.count(rows, "dead>discarded", now);
      })
      .immediate();
  }

  async stats(): Promise<QueueStats> {
    const row = this.readCounters();
    return { pending: row.pending, running: row.running, dead: row.dead, pendingTokens: row.pending_tokens };
  }

  /**
   * 0 also when the earliest available chunks are held back behind an older version of the same
   * chunk still in flight, so a caller that gets 0 and then a null reservation should idle briefly.
   */
  async nextAvailableInMs(): Promise<number | null> {
    const row = this.sql.earliestQueued.get();
    if (row === undefined) return null;
    return Math.max(0, row.available_at - this.now());
  }

  /** The database belongs to the caller (the vector store may share it), so it stays open. */
  async close(): Promise<void> {}

  /**
   * Releases leases whose owner process on this host is gone (a SIGKILLed server), so its chunks
   * do not wait out their lease. Counts a stall for each (dead letter at maxStalls). Runs on
   * construction; returns how many chunks were taken back (queued or dead).
   */
  recoverOrphans(): number {
    return this.db
      .transaction(() => {
        const now = this.now();
        let released = 0;
        for (const { lease_owner } of this.sql.runningOwners.all()) {
          if (lease_owner === this.ownerId || !isOrphanedOwner(lease_owner)) continue;
          released += this.requeue(
            this.sql.releaseOwner.all({ now, maxStalls: this.maxStalls, owner: lease_owner }),
            now,
          );
        }
        return released;
      })
      .immediate();
  }

  private enqueueInTransaction(request: EnqueueRequest): EnqueueResult {
    const { pending } = this.readCounters();
    const count = request.chunks.length;
    if (pending + count > request.maxQueueSize) {
      return { accepted: false, reason: "queue_full", pending, maxQueueSize: request.maxQueueSize };
    }
    const now = this.now();
    const jobId = randomUUID();
    this.sql.insertJob.run(jobId, request.collection, count, count, now, now);
    let tokens = 0;
    for (const chunk of request.chunks) {
      const estTokens = normaliseTokens(chunk.estimatedTokens);
      tokens += estTokens;
      this.sql.insertChunk.run(
        jobId,
        request.collection,
        chunk.chunkId,
        chunk.documentId,
        chunk.text,
        JSON.stringify(chunk.payload),
        estTokens,
        chunk.overflow.policy,
        normaliseTokens(chunk.overflow.overlapTokens),
        now,
        now,
        now,
      );
    }
    this.sql.addGlobalCounts.run(count, tokens, 0, 0);
    return { accepted: true, jobId, count };
  }

  private reserveInTransaction(request: ReserveRequest): Lease | null {
    const now = this.now();
    this.requeue(this.sql.reclaimExpired.all({ now, maxStalls: this.maxStalls }), now);

    const taken: CandidateRow[] = [];
    let tokens = 0;
    let afterSeq = 0;
    let scanned = 0;
    const pageSize = Math.min(Math.max(64, request.maxChunks * 2), MAX_SCANNED_PER_RESERVE);
    scan: while (taken.length < request.maxChunks && scanned < MAX_SCANNED_PER_RESERVE) {
      const page = this.sql.candidates.all(afterSeq, now, pageSize);
      for (const row of page) {
        afterSeq = row.seq;
        scanned += 1;
        // Rows taken earlier in this pass are still 'queued' here, so this also keeps a second
        // version of a chunk out of the same reservation.
        if (this.sql.olderInFlight.get(row.collection, row.chunk_id, row.seq)) continue;
        // FIFO: stop at a chunk that does not fit rather than let smaller later ones overtake it.
        if (taken.length > 0 && tokens + row.est_tokens > request.maxTokens) break scan;
        taken.push(row);
        tokens += row.est_tokens;
        if (taken.length >= request.maxChunks) break scan;
      }
      if (page.length < pageSize) break;
    }
    if (taken.length === 0) return null;

    const leaseId = randomUUID();
    const expiresAt = now + request.leaseMs;
    const deltas = new CounterDeltas();
    for (const row of taken) {
      this.sql.markRunning.run(leaseId, this.ownerId, expiresAt, now, row.seq);
      deltas.record(row.job_id, "queued>running", row.est_tokens);
    }
    deltas.flush(this.sql, now);
    return { id: leaseId, chunks: taken.map(toQueuedChunk), expiresAt };
  }

  /** Counts rows taken back from running (to queued, or dead after too many stalls); returns how many. */
  private requeue(rows: ReclaimedRow[], now: number): number {
    if (rows.length === 0) return 0;
    const deltas = new CounterDeltas();
    for (const row of rows) deltas.record(row.job_id, `running>${row.state}`, row.est_tokens);
    deltas.flush(this.sql, now);
    return rows.length;
  }

  /** Counts rows that made one transition; returns how many. */
  private count(rows: MovedRow[], transition: ChunkTransition, now: number): number {
    if (rows.length === 0) return 0;
    const deltas = new CounterDeltas();
    for (const row of rows) deltas.record(row.job_id, transition, row.est_tokens);
    deltas.flush(this.sql, now);
    return rows.length;
  }

  private readCounters(): CountersRow {
    const row = this.sql.counters.get();
    if (row === undefined) throw new Error("queue_counters row is missing");
    return row;
  }
}

/** Token estimates size reservations and the pending-token gauge, so keep them whole and non-negative. */
function normaliseTokens(estimate: number): number {
  return Number.isFinite(estimate) && estimate > 0 ? Math.ceil(estimate) : 0;
}

function toQueuedChunk(row: CandidateRow): QueuedChunk {
  return {
    seq: row.seq,
    // seq is AUTOINCREMENT: it grows with every accepted chunk, so it orders versions of one chunk id.
    version: row.seq,
    jobId: row.job_id,
    collection: row.collection,
    chunkId: row.chunk_id,
    documentId: row.document_id,
    text: row.text,
    payload: JSON.parse(row.payload) as Payload,
    estimatedTokens: row.est_tokens,
    attempts: row.attempts,
    overflow: { policy: row.overflow, overlapTokens: row.overlap_tokens },
  };
}

function toJob(row: JobRow, failures: FailureRow[], retrying: number): Job {
  return {
    id: row.id,
    collection: row.collection,
    state: toJobState(row),
    counts: toJobCounts(row, retrying),
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
    failures: failures.map((f) => ({
      chunkId: f.chunk_id,
      state: "dead",
      reason: f.last_error ?? "",
      attempts: f.attempts,
    })),
  };
}

function pageAfter(after: number | undefined): number {
  return after !== undefined && Number.isFinite(after) ? Math.floor(after) : 0;
}

function pageLimit(limit: number): number {
  return Number.isFinite(limit) ? Math.min(MAX_PAGE, Math.max(1, Math.floor(limit))) : MAX_PAGE;
}

/** Rows were read with limit + 1, so one more row than the page means there is a next page. */
function toPage<R extends { seq: number }, T>(rows: R[], limit: number, map: (row: R) => T): Page<T> {
  const more = rows.length > limit;
  const page = more ? rows.slice(0, limit) : rows;
  return { items: page.map(map), nextCursor: more ? (page[page.length - 1]?.seq ?? null) : null };
}

function uniqueSeqs(seqs: number[]): number[] {
  return [...new Set(seqs.filter((seq) => Number.isSafeInteger(seq)))];
}

function toReceipt(row: ReceiptRow): ChunkReceipt {
  const retrying = row.state === "queued" && row.attempts > 0 && row.last_error !== null;
  return {
    seq: row.seq,
    chunkId: row.chunk_id,
    state: retrying ? "failed" : row.state,
    attempts: row.attempts,
    tokens: row.tokens,
    truncatedTokens: row.truncated_tokens ?? 0,
    windows: row.windows,
    overflow: row.overflow,
    model: row.model,
    profile: row.profile,
    lastError: row.last_error,
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}

function toDeadLetter(row: DeadLetterRow): DeadLetter {
  return {
    seq: row.seq,
    jobId: row.job_id,
    collection: row.collection,
    chunkId: row.chunk_id,
    reason: row.last_error ?? "",
    attempts: row.attempts,
    deadAt: new Date(row.dead_at ?? row.updated_at).toISOString(),
  };
}
