import type { SqliteDatabase } from "../../storage/sqlite-database.js";

/**
 * Tables of the SQLite queue. Counters live beside the rows they count and are changed in the same
 * transactions, so `stats()` and the admission check read one row instead of scanning 200k chunks.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS queue_jobs (
  id TEXT PRIMARY KEY,
  collection TEXT NOT NULL,
  total INTEGER NOT NULL,
  queued INTEGER NOT NULL,
  running INTEGER NOT NULL DEFAULT 0,
  stored INTEGER NOT NULL DEFAULT 0,
  unchanged INTEGER NOT NULL DEFAULT 0,
  dead INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS queue_chunks (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL REFERENCES queue_jobs(id),
  collection TEXT NOT NULL,
  chunk_id TEXT NOT NULL,
  document_id TEXT,
  text TEXT NOT NULL,
  payload TEXT NOT NULL,
  est_tokens INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'stored', 'unchanged', 'dead')),
  attempts INTEGER NOT NULL DEFAULT 0,
  available_at INTEGER NOT NULL,
  lease_id TEXT,
  lease_owner TEXT,
  lease_expires_at INTEGER,
  last_error TEXT,
  tokens INTEGER,
  truncated_tokens INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

-- FIFO scan of reservable chunks (state = 'queued' ORDER BY seq), and of running ones for recovery.
CREATE INDEX IF NOT EXISTS queue_chunks_reserve ON queue_chunks (state, seq);
-- Earliest delayed retry without scanning the queue; also finds the (few) running rows for expiry.
CREATE INDEX IF NOT EXISTS queue_chunks_available ON queue_chunks (state, available_at);
-- A job's dead letters; partial, so inserting queued chunks does not pay for it.
CREATE INDEX IF NOT EXISTS queue_chunks_job_dead ON queue_chunks (job_id) WHERE state = 'dead';
CREATE INDEX IF NOT EXISTS queue_chunks_lease ON queue_chunks (lease_id) WHERE lease_id IS NOT NULL;
-- Last-write-wins ordering: is an older version of this chunk still queued or running?
CREATE INDEX IF NOT EXISTS queue_chunks_key ON queue_chunks (collection, chunk_id, state);

CREATE TABLE IF NOT EXISTS queue_counters (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  pending INTEGER NOT NULL,
  pending_tokens INTEGER NOT NULL,
  running INTEGER NOT NULL,
  dead INTEGER NOT NULL
);
INSERT OR IGNORE INTO queue_counters (id, pending, pending_tokens, running, dead) VALUES (1, 0, 0, 0, 0);
`;

/** Idempotent; immediate so that two processes opening a fresh file at once do not race. */
export function createQueueSchema(db: SqliteDatabase): void {
  db.transaction(() => {
    db.exec(SCHEMA);
  }).immediate();
}
