import { randomUUID } from "node:crypto";
import type { ChunkReceipt, DeadLetter, DocumentFloor, Job, ReceiptState } from "../../domain/types.js";
import type { SqliteDatabase } from "../../storage/sqlite-database.js";
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
import { CounterDeltas, readCounters } from "./counter-deltas.js";
import { defaultLeaseOwner, isOrphanedOwner } from "./lease-owner.js";
import { createQueueSchema } from "./queue-schema.js";
import {
  type CandidateRow,
  type CountersRow,
  type MovedRow,
  PAGE_ROWS,
  prepareQueueStatements,
  type QueueStatements,
  type ReclaimedRow,
} from "./queue-statements.js";
import type { RowState } from "./row-state.js";
import { admit } from "./sqlite-admission.js";
import { SqliteListings } from "./sqlite-listings.js";
import { toQueuedChunk } from "./sqlite-records.js";

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
  /** How long a finished job and its receipts are kept (default 7 days). */
  jobRetentionMs?: number;
  /** How long a dead letter is kept before it is discarded as expired (default 30 days). */
  deadLetterRetentionMs?: number;
  /** Chunks of one collection per fair-queuing rank (default FAIR_SHARE). */
  fairShare?: number;
}

const DEFAULT_MAX_STALLS = 5;
/** Chunk ids of a replacement's deleted points kept on its job (the count is always exact). */
const MAX_LISTED_DELETIONS = 1000;
const DAY_MS = 86_400_000;
/** Chunk rows one maintenance pass deletes at most (whole jobs; one job may exceed it alone). */
const MAX_PURGED_ROWS = 10 * PAGE_ROWS;

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
  private readonly jobRetentionMs: number;
  private readonly deadLetterRetentionMs: number;
  private readonly fairShare: number;
  /** The read-only side: a job, listings, receipts, dead letters. */
  private readonly listings: SqliteListings;

  constructor(db: SqliteDatabase, options: SqliteJobQueueOptions = {}) {
    this.db = db;
    this.ownerId = options.ownerId ?? defaultLeaseOwner();
    this.now = options.now ?? Date.now;
    const maxStalls = options.maxStalls ?? DEFAULT_MAX_STALLS;
    this.maxStalls = Number.isFinite(maxStalls) ? Math.max(1, Math.floor(maxStalls)) : DEFAULT_MAX_STALLS;
    this.jobRetentionMs = options.jobRetentionMs ?? 7 * DAY_MS;
    this.deadLetterRetentionMs = options.deadLetterRetentionMs ?? 30 * DAY_MS;
    this.fairShare = Math.max(1, Math.floor(options.fairShare ?? FAIR_SHARE));
    createQueueSchema(db);
    this.sql = prepareQueueStatements(db);
    this.listings = new SqliteListings(db, this.sql);
    this.recoverOrphans();
  }

  async enqueue(request: EnqueueRequest): Promise<EnqueueResult> {
    return this.db
      .transaction(() => admit(this.sql, request, { now: this.now(), fairShare: this.fairShare }))
      .immediate();
  }

  async reserve(request: ReserveRequest): Promise<Lease | null> {
    return this.db.transaction(() => this.reserveInTransaction(request)).immediate();
  }

  async renew(leaseId: string, leaseMs: number): Promise<boolean> {
    const now = this.now();
    return this.sql.renew.run(now + leaseMs, now, leaseId).changes > 0;
  }

  /**
   * The seqs among `seqs` that this lease still holds (the others passed to another worker), for
   * the embedded commit that checks the lease inside its transaction.
   */
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
          if (row !== undefined) deltas.record(row.job_id, "running", outcome.state, row.est_tokens);
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
            deltas.record(row.job_id, "running", "dead", row.est_tokens);
          } else {
            this.sql.retry.run(now + Math.max(0, request.retryDelayMs), request.error, now, seq);
            deltas.record(row.job_id, "running", "retrying", row.est_tokens);
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

  getJob(jobId: string): Promise<Job | null> {
    return this.listings.getJob(jobId);
  }

  listJobs(request: JobListRequest): Promise<JobPage> {
    return this.listings.listJobs(request);
  }

  async cancelJob(jobId: string): Promise<number | null> {
    if (this.sql.jobExists.get(jobId) === undefined) return null;
    let cancelled = 0;
    for (;;) {
      const moved = this.db
        .transaction(() => {
          const now = this.now();
          const rows = this.sql.cancelPage.all(now, jobId, PAGE_ROWS);
          this.count(rows, "queued", "cancelled", now);
          return rows.length;
        })
        .immediate();
      cancelled += moved;
      if (moved < PAGE_ROWS) return cancelled;
    }
  }

  async documentFloors(collection: string, documentIds: string[]): Promise<Map<string, DocumentFloor>> {
    return this.documentFloorsSync(collection, documentIds);
  }

  /** Synchronous `documentFloors`, for the embedded commit that checks them in its transaction. */
  documentFloorsSync(collection: string, documentIds: string[]): Map<string, DocumentFloor> {
    const floors = new Map<string, DocumentFloor>();
    for (const documentId of new Set(documentIds)) {
      const row = this.sql.floor.get(collection, documentId);
      if (row) floors.set(documentId, { version: row.floor, kind: row.kind });
    }
    return floors;
  }

  async deleteDocument(collection: string, documentId: string): Promise<DocumentFloor> {
    return this.db
      .transaction((): DocumentFloor => {
        const version = (this.sql.nextSeq.get() ?? this.sql.firstSeq.get())?.seq;
        if (version === undefined) throw new Error("could not allocate a version");
        this.sql.raiseFloor.run(collection, documentId, version, "delete", 0, this.now());
        const row = this.sql.floor.get(collection, documentId);
        return row ? { version: row.floor, kind: row.kind } : { version, kind: "delete" };
      })
      .immediate();
  }

  listDocuments(collection: string, request: { after?: string; limit: number }): Promise<DocumentPage> {
    return this.listings.listDocuments(collection, request);
  }

  async pendingFinalizations(limit: number): Promise<Finalization[]> {
    return this.sql.pendingFinalizations.all(Math.max(1, Math.floor(limit))).map((row) => ({
      jobId: row.id,
      collection: row.collection,
      documents: JSON.parse(row.replace_docs) as string[],
      version: row.first_seq,
    }));
  }

  async completeFinalization(
    jobId: string,
    result: { deletedPoints: number; deletedChunkIds: string[] },
  ): Promise<void> {
    this.sql.completeFinalization.run(
      this.now(),
      result.deletedPoints,
      JSON.stringify(result.deletedChunkIds.slice(0, MAX_LISTED_DELETIONS)),
      jobId,
    );
  }

  listChunks(jobId: string, request: PageRequest & { state?: ReceiptState }): Promise<Page<ChunkReceipt>> {
    return this.listings.listChunks(jobId, request);
  }

  listDeadLetters(request: PageRequest & { jobId?: string }): Promise<Page<DeadLetter>> {
    return this.listings.listDeadLetters(request);
  }

  /**
   * Dead letters back to queued, attempts and stalls reset, available at once. An old version
   * replayed after a newer one was stored is harmless: the store keeps the newer (`superseded`).
   */
  async replayDeadLetters(selector: DeadLetterSelector): Promise<number> {
    return this.moveDeadLetters(selector, "queued", (seq, now) => this.sql.replaySeq.all(now, now, seq));
  }

  async discardDeadLetters(selector: DeadLetterSelector): Promise<number> {
    return this.moveDeadLetters(selector, "discarded", (seq, now) => this.sql.discardSeq.all(now, seq));
  }

  /**
   * Applies `move` to the selected dead letters a page per transaction, so "all of 100,000" never
   * holds the write lock for more than one page.
   */
  private async moveDeadLetters(
    selector: DeadLetterSelector,
    to: RowState,
    move: (seq: number, now: number) => MovedRow[],
  ): Promise<number> {
    const pageOf = (page: number[]): number =>
      this.db
        .transaction(() => {
          const now = this.now();
          const deltas = new CounterDeltas();
          let moved = 0;
          for (const seq of page) {
            for (const row of move(seq, now)) {
              deltas.record(row.job_id, "dead", to, row.est_tokens);
              moved += 1;
            }
          }
          deltas.flush(this.sql, now);
          return moved;
        })
        .immediate();
    let total = 0;
    if ("seqs" in selector) {
      const seqs = uniqueSeqs(selector.seqs);
      for (let start = 0; start < seqs.length; start += PAGE_ROWS)
        total += pageOf(seqs.slice(start, start + PAGE_ROWS));
      return total;
    }
    let after = 0;
    for (;;) {
      const page = (
        "jobId" in selector
          ? this.sql.deadSeqsOfJob.all(selector.jobId, after, PAGE_ROWS)
          : this.sql.deadSeqs.all(after, PAGE_ROWS)
      ).map((r) => r.seq);
      if (page.length === 0) return total;
      total += pageOf(page);
      after = page[page.length - 1] ?? after;
      if (page.length < PAGE_ROWS) return total;
    }
  }

  async stats(): Promise<QueueStats> {
    const row = this.readCounters();
    return { pending: row.pending, running: row.running, dead: row.dead, pendingTokens: row.pending_tokens };
  }

  pendingInCollection(collection: string): Promise<number> {
    return this.listings.pendingInCollection(collection);
  }

  async nextAvailableInMs(): Promise<number | null> {
    if (this.sql.anyReady.get() !== undefined) return 0;
    const row = this.sql.earliestRetry.get();
    if (row === undefined) return null;
    return Math.max(0, row.available_at - this.now());
  }

  /**
   * Retention, a bounded amount per call: dead letters past their retention are discarded (the
   * receipt says why; their text goes), then finished jobs past JOB_RETENTION are deleted with
   * their receipts, whole jobs, about MAX_PURGED_ROWS rows a call.
   */
  async maintain(): Promise<MaintenanceResult> {
    const expiredDeadLetters = this.db
      .transaction(() => {
        const now = this.now();
        const rows = this.sql.expireDeadLetters.all(now, now - this.deadLetterRetentionMs, PAGE_ROWS);
        this.count(rows, "dead", "discarded", now);
        return rows.length;
      })
      .immediate();
    const expiredJobs = this.db
      .transaction(() => {
        let rows = 0;
        let jobs = 0;
        for (const job of this.sql.expiredJobs.all(this.now() - this.jobRetentionMs, 100)) {
          if (jobs > 0 && rows + job.total > MAX_PURGED_ROWS) break;
          // Every chunk of a finished job without dead letters is in a final state, so no global
          // counter changes.
          rows += this.sql.deleteJobChunks.run(job.id).changes;
          this.sql.deleteJob.run(job.id);
          jobs += 1;
        }
        return jobs;
      })
      .immediate();
    // A deleted document's floor matters while an older chunk of it may still arrive: queued,
    // retried, or replayed from the dead letters. A listed document keeps its row.
    this.sql.expireTombstones.run(this.now() - this.jobRetentionMs - this.deadLetterRetentionMs, PAGE_ROWS);
    return { expiredJobs, expiredDeadLetters };
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

  private reserveInTransaction(request: ReserveRequest): Lease | null {
    const now = this.now();
    this.sql.promoteDue.run(now, now, PAGE_ROWS);
    this.requeue(this.sql.reclaimExpired.all({ now, maxStalls: this.maxStalls, limit: PAGE_ROWS }), now);

    const taken: CandidateRow[] = [];
    let tokens = 0;
    for (const row of this.sql.candidates.all(Math.max(1, Math.floor(request.maxChunks)))) {
      // Stop at a chunk that does not fit rather than let smaller later ones overtake it.
      if (taken.length > 0 && tokens + row.est_tokens > request.maxTokens) break;
      taken.push(row);
      tokens += row.est_tokens;
    }
    if (taken.length === 0) return null;

    const leaseId = randomUUID();
    const expiresAt = now + request.leaseMs;
    const deltas = new CounterDeltas();
    for (const row of taken) {
      this.sql.markRunning.run(leaseId, this.ownerId, expiresAt, now, row.seq);
      deltas.record(row.job_id, "queued", "running", row.est_tokens);
    }
    deltas.flush(this.sql, now);
    return { id: leaseId, chunks: taken.map(toQueuedChunk), expiresAt };
  }

  /** Counts rows taken back from running (to queued, or dead after too many stalls); returns how many. */
  private requeue(rows: ReclaimedRow[], now: number): number {
    if (rows.length === 0) return 0;
    const deltas = new CounterDeltas();
    for (const row of rows) deltas.record(row.job_id, "running", row.state, row.est_tokens);
    deltas.flush(this.sql, now);
    return rows.length;
  }

  /** Counts rows that made one transition; returns how many. */
  private count(rows: MovedRow[], from: RowState, to: RowState, now: number): number {
    if (rows.length === 0) return 0;
    const deltas = new CounterDeltas();
    for (const row of rows) deltas.record(row.job_id, from, to, row.est_tokens);
    deltas.flush(this.sql, now);
    return rows.length;
  }

  private readCounters(): CountersRow {
    return readCounters(this.sql);
  }
}

function uniqueSeqs(seqs: number[]): number[] {
  return [...new Set(seqs.filter((seq) => Number.isSafeInteger(seq)))];
}
