import type { Statement } from "better-sqlite3";
import type { QueuedOverflowPolicy } from "../../domain/types.js";
import type { SqliteDatabase } from "../../storage/sqlite-database.js";
import type { StoredJobCounters } from "../job-counts.js";

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

export interface HeldRow extends MovedRow {
  attempts: number;
}

export interface JobRow extends StoredJobCounters {
  id: string;
  collection: string;
  created_at: number;
  updated_at: number;
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
  state: "queued" | "running" | "stored" | "unchanged" | "dead" | "discarded";
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

/** The receipt "failed": a queued chunk whose last attempt failed and that waits for its retry. */
const RETRYING = "(state = 'queued' AND attempts > 0 AND last_error IS NOT NULL)";

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

const RECEIPT_COLUMNS = `seq, chunk_id, state, attempts, tokens, truncated_tokens, windows, overflow, model,
  profile, last_error, updated_at`;

const DEAD_LETTER_COLUMNS = "seq, job_id, collection, chunk_id, last_error, attempts, dead_at, updated_at";

/**
 * A replay must not let an old version overwrite a newer one of the same chunk that is in flight
 * or already written (last write wins by enqueue order), so such dead letters stay dead.
 */
const NOT_SUPERSEDED = `NOT EXISTS (SELECT 1 FROM queue_chunks n
  WHERE n.collection = queue_chunks.collection AND n.chunk_id = queue_chunks.chunk_id
    AND n.state IN ('queued', 'running', 'stored', 'unchanged') AND n.seq > queue_chunks.seq)`;

const REPLAY_SET = `state = 'queued', attempts = 0, stalls = 0, available_at = ?, last_error = NULL,
  dead_at = NULL, lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = ?`;

/** Every statement of the queue, prepared once: enqueue sits on the HTTP path. */
export interface QueueStatements {
  counters: Statement<[], CountersRow>;
  addJobCounts: Statement<[number, number, number, number, number, number, number, string]>;
  addGlobalCounts: Statement<[number, number, number, number]>;
  insertJob: Statement<[string, string, number, number, number, number]>;
  insertChunk: Statement<
    [string, string, string, string | null, string, string, number, string, number, number, number, number]
  >;
  reclaimExpired: Statement<[ReclaimParams], ReclaimedRow>;
  candidates: Statement<[number, number, number], CandidateRow>;
  olderInFlight: Statement<[string, string, number], { one: number }>;
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
  earliestQueued: Statement<[], { available_at: number }>;
  receipts: Statement<[string, number, number], ReceiptRow>;
  receiptsInState: Statement<[string, string, number, number], ReceiptRow>;
  receiptsQueued: Statement<[string, number, number], ReceiptRow>;
  receiptsFailed: Statement<[string, number, number], ReceiptRow>;
  deadLetters: Statement<[number, number], DeadLetterRow>;
  deadLettersOfJob: Statement<[string, number, number], DeadLetterRow>;
  replayAll: Statement<[number, number], MovedRow>;
  replayJob: Statement<[number, number, string], MovedRow>;
  replaySeq: Statement<[number, number, number], MovedRow>;
  discardAll: Statement<[number], MovedRow>;
  discardJob: Statement<[number, string], MovedRow>;
  discardSeq: Statement<[number, number], MovedRow>;
}

export function prepareQueueStatements(db: SqliteDatabase): QueueStatements {
  return {
    counters: db.prepare<[], CountersRow>(
      "SELECT pending, pending_tokens, running, dead FROM queue_counters WHERE id = 1",
    ),
    addJobCounts: db.prepare<[number, number, number, number, number, number, number, string]>(
      `UPDATE queue_jobs SET queued = queued + ?, running = running + ?, stored = stored + ?,
         unchanged = unchanged + ?, dead = dead + ?, discarded = discarded + ?, updated_at = ? WHERE id = ?`,
    ),
    addGlobalCounts: db.prepare<[number, number, number, number]>(
      `UPDATE queue_counters SET pending = pending + ?, pending_tokens = pending_tokens + ?,
         running = running + ?, dead = dead + ? WHERE id = 1`,
    ),
    insertJob: db.prepare<[string, string, number, number, number, number]>(
      `INSERT INTO queue_jobs (id, collection, total, queued, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?)`,
    ),
    insertChunk: db.prepare<
      [string, string, string, string | null, string, string, number, string, number, number, number, number]
    >(
      `INSERT INTO queue_chunks (job_id, collection, chunk_id, document_id, text, payload, est_tokens,
         overflow, overlap_tokens, state, attempts, available_at, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?)`,
    ),
    reclaimExpired: db.prepare<[ReclaimParams], ReclaimedRow>(
      `UPDATE queue_chunks SET ${RECLAIM_SET}
       WHERE state = 'running' AND lease_expires_at <= @now RETURNING job_id, est_tokens, state`,
    ),
    candidates: db.prepare<[number, number, number], CandidateRow>(
      `SELECT seq, job_id, collection, chunk_id, document_id, text, payload, est_tokens, attempts,
         overflow, overlap_tokens
       FROM queue_chunks WHERE state = 'queued' AND seq > ? AND available_at <= ?
       ORDER BY seq LIMIT ?`,
    ),
    // An older version of the chunk still in flight (running, or queued behind a retry delay) must
    // be written first, or a re-ingest could be overwritten by the stale text it replaced.
    olderInFlight: db.prepare<[string, string, number], { one: number }>(
      `SELECT 1 AS one FROM queue_chunks WHERE collection = ? AND chunk_id = ?
         AND (state = 'running' OR (state = 'queued' AND seq < ?)) LIMIT 1`,
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
      // A stored chunk's text and payload live in the store now: keeping a second copy in the
      // queue would double the file over a large ingest. The receipt fields stay.
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
      `UPDATE queue_chunks SET state = 'queued', attempts = attempts + 1, available_at = ?, last_error = ?,
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
    job: db.prepare<[string], JobRow>(
      `SELECT id, collection, total, queued, running, stored, unchanged, dead, discarded, created_at,
         updated_at
       FROM queue_jobs WHERE id = ?`,
    ),
    failures: db.prepare<[string, number], FailureRow>(
      `SELECT chunk_id, last_error, attempts FROM queue_chunks
       WHERE job_id = ? AND state = 'dead' ORDER BY seq LIMIT ?`,
    ),
    retryingOfJob: db.prepare<[string], { n: number }>(
      `SELECT count(*) AS n FROM queue_chunks WHERE job_id = ? AND ${RETRYING}`,
    ),
    earliestQueued: db.prepare<[], { available_at: number }>(
      "SELECT available_at FROM queue_chunks WHERE state = 'queued' ORDER BY available_at LIMIT 1",
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
    replayAll: db.prepare<[number, number], MovedRow>(
      `UPDATE queue_chunks SET ${REPLAY_SET}
       WHERE state = 'dead' AND ${NOT_SUPERSEDED} RETURNING job_id, est_tokens`,
    ),
    replayJob: db.prepare<[number, number, string], MovedRow>(
      `UPDATE queue_chunks SET ${REPLAY_SET}
       WHERE job_id = ? AND state = 'dead' AND ${NOT_SUPERSEDED} RETURNING job_id, est_tokens`,
    ),
    replaySeq: db.prepare<[number, number, number], MovedRow>(
      `UPDATE queue_chunks SET ${REPLAY_SET}
       WHERE seq = ? AND state = 'dead' AND ${NOT_SUPERSEDED} RETURNING job_id, est_tokens`,
    ),
    discardAll: db.prepare<[number], MovedRow>(
      `UPDATE queue_chunks SET state = 'discarded', updated_at = ?
       WHERE state = 'dead' RETURNING job_id, est_tokens`,
    ),
    discardJob: db.prepare<[number, string], MovedRow>(
      `UPDATE queue_chunks SET state = 'discarded', updated_at = ?
       WHERE job_id = ? AND state = 'dead' RETURNING job_id, est_tokens`,
    ),
    discardSeq: db.prepare<[number, number], MovedRow>(
      `UPDATE queue_chunks SET state = 'discarded', updated_at = ?
       WHERE seq = ? AND state = 'dead' RETURNING job_id, est_tokens`,
    ),
  };
}
