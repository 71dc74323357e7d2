import type { Statement } from "better-sqlite3";
import type { QueuedOverflowPolicy } from "../../domain/types.js";
import type { SqliteDatabase } from "../../storage/sqlite-database.js";
import type { StoredJobCounters } from "../job-counts.js";
import type { RowState } from "./counter-deltas.js";

export interface CandidateRow {
  seq: number;
  job_id: string;
  collection: string;
  chunk_id: string;
  document_id: string | null;
  text: string;
  payload: string;
  est_tokens: number;
  attempts: number;
  overflow: QueuedOverflowPolicy;
  overlap_tokens: number;
}

export interface MovedRow {
  job_id: string;
  est_tokens: number;
}

/** A running chunk taken back without an outcome: to 'queued', or to 'dead' after too many stalls. */
export interface ReclaimedRow extends MovedRow {
  state: "queued" | "dead";
}

export interface FairnessRow {
  rank: number;
  fill: number;
}

export interface JobDeltaParams {
  queued: number;
  running: number;
  stored: number;
  unchanged: number;
  superseded: number;
  dead: number;
  discarded: number;
  cancelled: number;
  now: number;
  id: string;
}

export interface HeldRow extends MovedRow {
  attempts: number;
}

export interface JobRow extends StoredJobCounters {
  id: string;
  collection: string;
  created_at: number;
  updated_at: number;
  replace_docs: string | null;
  finalized_at: number | null;
  deleted_points: number;
  deleted_ids: string | null;
}

export interface FinalizationRow {
  id: string;
  collection: string;
  replace_docs: string;
  first_seq: number;
}

export interface FloorRow {
  document_id: string;
  floor: number;
  kind: "replace" | "delete";
}

export interface FailureRow {
  chunk_id: string;
  last_error: string | null;
  attempts: number;
}

export interface CountersRow {
  pending: number;
  pending_tokens: number;
  running: number;
  dead: number;
}

export interface ReceiptRow {
  seq: number;
  chunk_id: string;
  state: RowState;
  attempts: number;
  tokens: number | null;
  truncated_tokens: number | null;
  windows: number | null;
  overflow: QueuedOverflowPolicy;
  model: string | null;
  profile: string | null;
  last_error: string | null;
  updated_at: number;
}

export interface DeadLetterRow {
  seq: number;
  job_id: string;
  collection: string;
  chunk_id: string;
  last_error: string | null;
  attempts: number;
  dead_at: number | null;
  updated_at: number;
}

export interface ReclaimParams {
  now: number;
  maxStalls: number;
}

export interface ReleaseOwnerParams extends ReclaimParams {
  owner: string;
}

/**
 * The receipt "failed": the chunk's last attempt failed and its retry has not started yet (still
 * waiting, or due and back in line).
 */
const RETRYING = "(state = 'retrying' OR (state = 'queued' AND attempts > 0 AND last_error IS NOT NULL))";

/**
 * Takes a running chunk back without an outcome (its worker died or lost the lease), counting a
 * stall; at maxStalls it becomes a dead letter, so a chunk that kills every worker cannot loop.
 * SET expressions see the row as it was before the update.
 */
const RECLAIM_SET = `stalls = stalls + 1,
  state = CASE WHEN stalls + 1 >= @maxStalls THEN 'dead' ELSE 'queued' END,
  last_error = CASE WHEN stalls + 1 >= @maxStalls
    THEN 'worker stopped while processing this chunk ' || (stalls + 1) || ' times (crash, kill or lease timeout)'
    ELSE last_error END,
  dead_at = CASE WHEN stalls + 1 >= @maxStalls THEN @now ELSE dead_at END,
  lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = @now`;

const JOB_COLUMNS = `id, collection, total, queued, running, stored, unchanged, superseded, dead, discarded,
  cancelled, created_at, updated_at, replace_docs, finalized_at, deleted_points, deleted_ids`;

const RECEIPT_COLUMNS = `seq, chunk_id, state, attempts, tokens, truncated_tokens, windows, overflow, model,
  profile, last_error, updated_at`;

const DEAD_LETTER_COLUMNS = "seq, job_id, collection, chunk_id, last_error, attempts, dead_at, updated_at";

const REPLAY_SET = `state = 'queued', attempts = 0, stalls = 0, available_at = ?, last_error = NULL,
  dead_at = NULL, lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = ?`;

/** Rows a paged operation handles per transaction: holds the write lock for milliseconds, not seconds. */
export const PAGE_ROWS = 1000;

/** Every statement of the queue, prepared once: enqueue sits on the HTTP path. */
export interface QueueStatements {
  counters: Statement<[], CountersRow>;
  addJobCounts: Statement<[JobDeltaParams]>;
  addGlobalCounts: Statement<[number, number, number, number]>;
  jobExists: Statement<[string], { total: number }>;
  insertJob: Statement<[string, string, number, number, number, number]>;
  insertChunk: Statement<
    [
      string,
      string,
      string,
      string | null,
      string,
      string,
      number,
      string,
      number,
      number,
      number,
      number,
      number,
    ]
  >;
  fairness: Statement<[string], FairnessRow>;
  setFairness: Statement<[string, number, number]>;
  clearFairness: Statement<[]>;
  headRank: Statement<[], { rank: number }>;
  promoteDue: Statement<[number, number, number]>;
  reclaimExpired: Statement<[ReclaimParams & { limit: number }], ReclaimedRow>;
  candidates: Statement<[number], CandidateRow>;
  markRunning: Statement<[string, string, number, number, number]>;
  renew: Statement<[number, number, string]>;
  ackOne: Statement<
    [string, number | null, number | null, number | null, string, string, number, number, string],
    MovedRow
  >;
  held: Statement<[number, string], HeldRow>;
  retry: Statement<[number, string, number, number]>;
  kill: Statement<[string, number, number, number]>;
  release: Statement<[number, string], MovedRow>;
  runningOwners: Statement<[], { lease_owner: string }>;
  releaseOwner: Statement<[ReleaseOwnerParams], ReclaimedRow>;
  job: Statement<[string], JobRow>;
  failures: Statement<[string, number], FailureRow>;
  retryingOfJob: Statement<[string], { n: number }>;
  anyReady: Statement<[], { one: number }>;
  earliestRetry: Statement<[], { available_at: number }>;
  receipts: Statement<[string, number, number], ReceiptRow>;
  receiptsInState: Statement<[string, string, number, number], ReceiptRow>;
  receiptsQueued: Statement<[string, number, number], ReceiptRow>;
  receiptsFailed: Statement<[string, number, number], ReceiptRow>;
  deadLetters: Statement<[number, number], DeadLetterRow>;
  deadLettersOfJob: Statement<[string, number, number], DeadLetterRow>;
  deadSeqs: Statement<[number, number], { seq: number }>;
  deadSeqsOfJob: Statement<[string, number, number], { seq: number }>;
  replaySeq: Statement<[number, number, number], MovedRow>;
  discardSeq: Statement<[number, number], MovedRow>;
  jobsActive: Statement<[string | null, string | null, number, string, number], JobRow>;
  jobsFinished: Statement<[string | null, string | null, number, string, number], JobRow>;
  cancelPage: Statement<[number, string, number], MovedRow>;
  expireDeadLetters: Statement<[number, number, number], MovedRow>;
  expiredJobs: Statement<[number, number], { id: string; total: number }>;
  markReplacement: Statement<[string, number, string]>;
  raiseFloor: Statement<[string, string, number, string, number, number]>;
  listDocument: Statement<[string, string, number]>;
  floor: Statement<[string, string], FloorRow>;
  listedDocuments: Statement<[string, string, number], { document_id: string }>;
  nextSeq: Statement<[], { seq: number }>;
  firstSeq: Statement<[], { seq: number }>;
  pendingFinalizations: Statement<[number], FinalizationRow>;
  completeFinalization: Statement<[number, number, string, string]>;
  expireTombstones: Statement<[number, number]>;
  deleteJobChunks: Statement<[string]>;
  deleteJob: Statement<[string]>;
}

export function prepareQueueStatements(db: SqliteDatabase): QueueStatements {
  return {
    counters: db.prepare<[], CountersRow>(
      "SELECT pending, pending_tokens, running, dead FROM queue_counters WHERE id = 1",
    ),
    // SET expressions read the row as it was, so the done_at test sees old counts plus the delta.
    addJobCounts: db.prepare<[JobDeltaParams]>(
      `UPDATE queue_jobs SET queued = queued + @queued, running = running + @running,
         stored = stored + @stored, unchanged = unchanged + @unchanged,
         superseded = superseded + @superseded, dead = dead + @dead, discarded = discarded + @discarded,
         cancelled = cancelled + @cancelled, updated_at = @now,
         done_at = CASE WHEN queued + @queued + running + @running = 0 THEN COALESCE(done_at, @now) ELSE NULL END
       WHERE id = @id`,
    ),
    addGlobalCounts: db.prepare<[number, number, number, number]>(
      `UPDATE queue_counters SET pending = pending + ?, pending_tokens = pending_tokens + ?,
         running = running + ?, dead = dead + ? WHERE id = 1`,
    ),
    jobExists: db.prepare<[string], { total: number }>("SELECT total FROM queue_jobs WHERE id = ?"),
    insertJob: db.prepare<[string, string, number, number, number, number]>(
      `INSERT INTO queue_jobs (id, collection, total, queued, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?)`,
    ),
    insertChunk: db.prepare<
      [
        string,
        string,
        string,
        string | null,
        string,
        string,
        number,
        string,
        number,
        number,
        number,
        number,
        number,
      ]
    >(
      `INSERT INTO queue_chunks (job_id, collection, chunk_id, document_id, text, payload, est_tokens,
         overflow, overlap_tokens, state, attempts, available_at, created_at, updated_at, fair_rank)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?)`,
    ),
    fairness: db.prepare<[string], FairnessRow>("SELECT rank, fill FROM queue_fairness WHERE collection = ?"),
    setFairness: db.prepare<[string, number, number]>(
      `INSERT INTO queue_fairness (collection, rank, fill) VALUES (?, ?, ?)
       ON CONFLICT(collection) DO UPDATE SET rank = excluded.rank, fill = excluded.fill`,
    ),
    clearFairness: db.prepare("DELETE FROM queue_fairness"),
    // The rank being served: the lowest among chunks waiting (ready or for a retry).
    headRank: db.prepare<[], { rank: number }>(
      `SELECT MIN(fair_rank) AS rank FROM (
         SELECT fair_rank FROM (SELECT fair_rank FROM queue_chunks WHERE state = 'queued' ORDER BY fair_rank LIMIT 1)
         UNION ALL
         SELECT fair_rank FROM (SELECT fair_rank FROM queue_chunks WHERE state = 'retrying' ORDER BY fair_rank LIMIT 1))`,
    ),
    promoteDue: db.prepare<[number, number, number]>(
      `UPDATE queue_chunks SET state = 'queued', updated_at = ? WHERE seq IN (
         SELECT seq FROM queue_chunks WHERE state = 'retrying' AND available_at <= ?
         ORDER BY available_at LIMIT ?)`,
    ),
    reclaimExpired: db.prepare<[ReclaimParams & { limit: number }], ReclaimedRow>(
      `UPDATE queue_chunks SET ${RECLAIM_SET}
       WHERE seq IN (SELECT seq FROM queue_chunks WHERE state = 'running' AND lease_expires_at <= @now
         LIMIT @limit)
       RETURNING job_id, est_tokens, state`,
    ),
    candidates: db.prepare<[number], CandidateRow>(
      `SELECT seq, job_id, collection, chunk_id, document_id, text, payload, est_tokens, attempts,
         overflow, overlap_tokens
       FROM queue_chunks WHERE state = 'queued' ORDER BY fair_rank, seq LIMIT ?`,
    ),
    markRunning: db.prepare<[string, string, number, number, number]>(
      `UPDATE queue_chunks SET state = 'running', lease_id = ?, lease_owner = ?, lease_expires_at = ?,
         updated_at = ? WHERE seq = ?`,
    ),
    renew: db.prepare<[number, number, string]>(
      `UPDATE queue_chunks SET lease_expires_at = ?, updated_at = ?
       WHERE lease_id = ? AND state = 'running'`,
    ),
    ackOne: db.prepare<
      [string, number | null, number | null, number | null, string, string, number, number, string],
      MovedRow
    >(
      // A finished chunk's text and payload live in the store now (or were superseded): keeping a
      // second copy in the queue would double the file over a large ingest. The receipt fields stay.
      `UPDATE queue_chunks SET state = ?, tokens = ?, truncated_tokens = ?, windows = ?, model = ?,
         profile = ?, text = '', payload = '{}',
         lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
       WHERE seq = ? AND lease_id = ? AND state = 'running' RETURNING job_id, est_tokens`,
    ),
    held: db.prepare<[number, string], HeldRow>(
      `SELECT job_id, est_tokens, attempts FROM queue_chunks
       WHERE seq = ? AND lease_id = ? AND state = 'running'`,
    ),
    retry: db.prepare<[number, string, number, number]>(
      `UPDATE queue_chunks SET state = 'retrying', attempts = attempts + 1, available_at = ?, last_error = ?,
         lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = ? WHERE seq = ?`,
    ),
    kill: db.prepare<[string, number, number, number]>(
      `UPDATE queue_chunks SET state = 'dead', attempts = attempts + 1, last_error = ?, dead_at = ?,
         lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = ? WHERE seq = ?`,
    ),
    release: db.prepare<[number, string], MovedRow>(
      `UPDATE queue_chunks SET state = 'queued', lease_id = NULL, lease_owner = NULL,
         lease_expires_at = NULL, updated_at = ?
       WHERE lease_id = ? AND state = 'running' RETURNING job_id, est_tokens`,
    ),
    runningOwners: db.prepare<[], { lease_owner: string }>(
      `SELECT DISTINCT lease_owner FROM queue_chunks
       WHERE state = 'running' AND lease_owner IS NOT NULL`,
    ),
    releaseOwner: db.prepare<[ReleaseOwnerParams], ReclaimedRow>(
      `UPDATE queue_chunks SET ${RECLAIM_SET}
       WHERE state = 'running' AND lease_owner = @owner RETURNING job_id, est_tokens, state`,
    ),
    job: db.prepare<[string], JobRow>(`SELECT ${JOB_COLUMNS} FROM queue_jobs WHERE id = ?`),
    failures: db.prepare<[string, number], FailureRow>(
      `SELECT chunk_id, last_error, attempts FROM queue_chunks
       WHERE job_id = ? AND state = 'dead' ORDER BY seq LIMIT ?`,
    ),
    retryingOfJob: db.prepare<[string], { n: number }>(
      `SELECT count(*) AS n FROM queue_chunks WHERE job_id = ? AND ${RETRYING}`,
    ),
    anyReady: db.prepare<[], { one: number }>(
      "SELECT 1 AS one FROM queue_chunks WHERE state = 'queued' LIMIT 1",
    ),
    earliestRetry: db.prepare<[], { available_at: number }>(
      "SELECT available_at FROM queue_chunks WHERE state = 'retrying' ORDER BY available_at LIMIT 1",
    ),
    receipts: db.prepare<[string, number, number], ReceiptRow>(
      `SELECT ${RECEIPT_COLUMNS} FROM queue_chunks WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
    ),
    receiptsInState: db.prepare<[string, string, number, number], ReceiptRow>(
      `SELECT ${RECEIPT_COLUMNS} FROM queue_chunks WHERE job_id = ? AND state = ? AND seq > ?
       ORDER BY seq LIMIT ?`,
    ),
    receiptsQueued: db.prepare<[string, number, number], ReceiptRow>(
      `SELECT ${RECEIPT_COLUMNS} FROM queue_chunks WHERE job_id = ? AND state = 'queued'
         AND NOT ${RETRYING} AND seq > ? ORDER BY seq LIMIT ?`,
    ),
    receiptsFailed: db.prepare<[string, number, number], ReceiptRow>(
      `SELECT ${RECEIPT_COLUMNS} FROM queue_chunks WHERE job_id = ? AND ${RETRYING} AND seq > ?
       ORDER BY seq LIMIT ?`,
    ),
    deadLetters: db.prepare<[number, number], DeadLetterRow>(
      `SELECT ${DEAD_LETTER_COLUMNS} FROM queue_chunks WHERE state = 'dead' AND seq > ? ORDER BY seq LIMIT ?`,
    ),
    deadLettersOfJob: db.prepare<[string, number, number], DeadLetterRow>(
      `SELECT ${DEAD_LETTER_COLUMNS} FROM queue_chunks WHERE job_id = ? AND state = 'dead' AND seq > ?
       ORDER BY seq LIMIT ?`,
    ),
    deadSeqs: db.prepare<[number, number], { seq: number }>(
      "SELECT seq FROM queue_chunks WHERE state = 'dead' AND seq > ? ORDER BY seq LIMIT ?",
    ),
    deadSeqsOfJob: db.prepare<[string, number, number], { seq: number }>(
      "SELECT seq FROM queue_chunks WHERE job_id = ? AND state = 'dead' AND seq > ? ORDER BY seq LIMIT ?",
    ),
    replaySeq: db.prepare<[number, number, number], MovedRow>(
      `UPDATE queue_chunks SET ${REPLAY_SET}
       WHERE seq = ? AND state = 'dead' RETURNING job_id, est_tokens`,
    ),
    discardSeq: db.prepare<[number, number], MovedRow>(
      `UPDATE queue_chunks SET state = 'discarded', updated_at = ?
       WHERE seq = ? AND state = 'dead' RETURNING job_id, est_tokens`,
    ),
    jobsActive: db.prepare<[string | null, string | null, number, string, number], JobRow>(
      `SELECT ${JOB_COLUMNS} FROM queue_jobs WHERE done_at IS NULL AND (? IS NULL OR collection = ?)
         AND (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?`,
    ),
    jobsFinished: db.prepare<[string | null, string | null, number, string, number], JobRow>(
      `SELECT ${JOB_COLUMNS} FROM queue_jobs WHERE done_at IS NOT NULL AND (? IS NULL OR collection = ?)
         AND (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?`,
    ),
    cancelPage: db.prepare<[number, string, number], MovedRow>(
      `UPDATE queue_chunks SET state = 'cancelled', text = '', payload = '{}', updated_at = ?
       WHERE seq IN (SELECT seq FROM queue_chunks WHERE job_id = ? AND state IN ('queued', 'retrying')
         ORDER BY seq LIMIT ?)
       RETURNING job_id, est_tokens`,
    ),
    expireDeadLetters: db.prepare<[number, number, number], MovedRow>(
      `UPDATE queue_chunks SET state = 'discarded', text = '', payload = '{}',
         last_error = 'expired after DEAD_LETTER_RETENTION: ' || COALESCE(last_error, ''), updated_at = ?
       WHERE seq IN (SELECT seq FROM queue_chunks WHERE state = 'dead' AND dead_at <= ?
         ORDER BY dead_at LIMIT ?)
       RETURNING job_id, est_tokens`,
    ),
    expiredJobs: db.prepare<[number, number], { id: string; total: number }>(
      `SELECT id, total FROM queue_jobs WHERE done_at IS NOT NULL AND done_at <= ? AND dead = 0
         AND (replace_docs IS NULL OR finalized_at IS NOT NULL)
       ORDER BY done_at LIMIT ?`,
    ),
    markReplacement: db.prepare<[string, number, string]>(
      "UPDATE queue_jobs SET replace_docs = ?, first_seq = ? WHERE id = ?",
    ),
    // A floor that only grows; `listed` = 0 for a delete (a tombstone), 1 for a replacement.
    raiseFloor: db.prepare<[string, string, number, string, number, number]>(
      `INSERT INTO queue_documents (collection, document_id, floor, kind, listed, updated_at)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (collection, document_id) DO UPDATE SET floor = excluded.floor, kind = excluded.kind,
         listed = excluded.listed, updated_at = excluded.updated_at
       WHERE excluded.floor > queue_documents.floor`,
    ),
    listDocument: db.prepare<[string, string, number]>(
      `INSERT INTO queue_documents (collection, document_id, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (collection, document_id) DO UPDATE SET listed = 1, updated_at = excluded.updated_at`,
    ),
    floor: db.prepare<[string, string], FloorRow>(
      `SELECT document_id, floor, kind FROM queue_documents
       WHERE collection = ? AND document_id = ? AND floor > 0`,
    ),
    listedDocuments: db.prepare<[string, string, number], { document_id: string }>(
      `SELECT document_id FROM queue_documents WHERE collection = ? AND document_id > ? AND listed = 1
       ORDER BY document_id LIMIT ?`,
    ),
    // A version that belongs to no chunk: AUTOINCREMENT never hands out a seq below it again.
    nextSeq: db.prepare<[], { seq: number }>(
      "UPDATE sqlite_sequence SET seq = seq + 1 WHERE name = 'queue_chunks' RETURNING seq",
    ),
    firstSeq: db.prepare<[], { seq: number }>(
      "INSERT INTO sqlite_sequence (name, seq) VALUES ('queue_chunks', 1) RETURNING seq",
    ),
    pendingFinalizations: db.prepare<[number], FinalizationRow>(
      `SELECT id, collection, replace_docs, first_seq FROM queue_jobs
       WHERE replace_docs IS NOT NULL AND finalized_at IS NULL AND done_at IS NOT NULL AND dead = 0
       ORDER BY done_at LIMIT ?`,
    ),
    completeFinalization: db.prepare<[number, number, string, string]>(
      `UPDATE queue_jobs SET finalized_at = ?, deleted_points = ?, deleted_ids = ?
       WHERE id = ? AND finalized_at IS NULL`,
    ),
    expireTombstones: db.prepare<[number, number]>(
      `DELETE FROM queue_documents WHERE rowid IN (
         SELECT rowid FROM queue_documents WHERE listed = 0 AND updated_at <= ? ORDER BY updated_at LIMIT ?)`,
    ),
    deleteJobChunks: db.prepare<[string]>("DELETE FROM queue_chunks WHERE job_id = ?"),
    deleteJob: db.prepare<[string]>("DELETE FROM queue_jobs WHERE id = ?"),
  };
}
