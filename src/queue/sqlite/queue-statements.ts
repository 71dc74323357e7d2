import type { Statement } from "better-sqlite3";
import type { SqliteDatabase } from "../../storage/sqlite-database.js";

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
}

export interface MovedRow {
  job_id: string;
  est_tokens: number;
}

export interface HeldRow extends MovedRow {
  attempts: number;
}

export interface JobRow {
  id: string;
  collection: string;
  total: number;
  queued: number;
  running: number;
  stored: number;
  unchanged: number;
  dead: number;
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

/** Every statement of the queue, prepared once: enqueue sits on the HTTP path. */
export interface QueueStatements {
  counters: Statement<[], CountersRow>;
  addJobCounts: Statement<[number, number, number, number, number, number, string]>;
  addGlobalCounts: Statement<[number, number, number, number]>;
  insertJob: Statement<[string, string, number, number, number, number]>;
  insertChunk: Statement<
    [string, string, string, string | null, string, string, number, number, number, number]
  >;
  reclaimExpired: Statement<[number, number], MovedRow>;
  candidates: Statement<[number, number, number], CandidateRow>;
  olderInFlight: Statement<[string, string, number], { one: number }>;
  markRunning: Statement<[string, string, number, number, number]>;
  renew: Statement<[number, number, string]>;
  ackOne: Statement<[string, number | null, number | null, number, number, string], MovedRow>;
  held: Statement<[number, string], HeldRow>;
  retry: Statement<[number, string, number, number]>;
  kill: Statement<[string, number, number]>;
  release: Statement<[number, string], MovedRow>;
  runningOwners: Statement<[], { lease_owner: string }>;
  releaseOwner: Statement<[number, string], MovedRow>;
  job: Statement<[string], JobRow>;
  failures: Statement<[string, number], FailureRow>;
  earliestQueued: Statement<[], { available_at: number }>;
}

export function prepareQueueStatements(db: SqliteDatabase): QueueStatements {
  return {
    counters: db.prepare<[], CountersRow>(
      "SELECT pending, pending_tokens, running, dead FROM queue_counters WHERE id = 1",
    ),
    addJobCounts: db.prepare<[number, number, number, number, number, number, string]>(
      `UPDATE queue_jobs SET queued = queued + ?, running = running + ?, stored = stored + ?,
         unchanged = unchanged + ?, dead = dead + ?, updated_at = ? WHERE id = ?`,
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
      [string, string, string, string | null, string, string, number, number, number, number]
    >(
      `INSERT INTO queue_chunks (job_id, collection, chunk_id, document_id, text, payload, est_tokens,
         state, attempts, available_at, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?)`,
    ),
    reclaimExpired: db.prepare<[number, number], MovedRow>(
      `UPDATE queue_chunks SET state = 'queued', lease_id = NULL, lease_owner = NULL,
         lease_expires_at = NULL, updated_at = ?
       WHERE state = 'running' AND lease_expires_at <= ? RETURNING job_id, est_tokens`,
    ),
    candidates: db.prepare<[number, number, number], CandidateRow>(
      `SELECT seq, job_id, collection, chunk_id, document_id, text, payload, est_tokens, attempts
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
    ackOne: db.prepare<[string, number | null, number | null, number, number, string], MovedRow>(
      `UPDATE queue_chunks SET state = ?, tokens = ?, truncated_tokens = ?, lease_id = NULL,
         lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
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
    kill: db.prepare<[string, number, number]>(
      `UPDATE queue_chunks SET state = 'dead', attempts = attempts + 1, last_error = ?, lease_id = NULL,
         lease_owner = NULL, lease_expires_at = NULL, updated_at = ? WHERE seq = ?`,
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
    releaseOwner: db.prepare<[number, string], MovedRow>(
      `UPDATE queue_chunks SET state = 'queued', lease_id = NULL, lease_owner = NULL,
         lease_expires_at = NULL, updated_at = ?
       WHERE state = 'running' AND lease_owner = ? RETURNING job_id, est_tokens`,
    ),
    job: db.prepare<[string], JobRow>(
      `SELECT id, collection, total, queued, running, stored, unchanged, dead, created_at, updated_at
       FROM queue_jobs WHERE id = ?`,
    ),
    failures: db.prepare<[string, number], FailureRow>(
      `SELECT chunk_id, last_error, attempts FROM queue_chunks
       WHERE job_id = ? AND state = 'dead' ORDER BY seq LIMIT ?`,
    ),
    earliestQueued: db.prepare<[], { available_at: number }>(
      "SELECT available_at FROM queue_chunks WHERE state = 'queued' ORDER BY available_at LIMIT 1",
    ),
  };
}
