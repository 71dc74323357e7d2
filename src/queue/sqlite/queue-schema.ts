import type { SqliteDatabase } from "../../storage/sqlite-database.js";

/** Columns of queue_chunks, in order; `{{name}}` is the table name (used again by the rebuild). */
const CHUNKS_TABLE = `
CREATE TABLE IF NOT EXISTS {{name}} (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL REFERENCES queue_jobs(id),
  collection TEXT NOT NULL,
  chunk_id TEXT NOT NULL,
  document_id TEXT,
  text TEXT NOT NULL,
  payload TEXT NOT NULL,
  est_tokens INTEGER NOT NULL,
  -- 'retrying': a failed attempt waits for available_at, then becomes 'queued' again.
  state TEXT NOT NULL CHECK (state IN ('queued', 'retrying', 'running', 'stored', 'unchanged',
    'superseded', 'dead', 'discarded', 'cancelled')),
  attempts INTEGER NOT NULL DEFAULT 0,
  available_at INTEGER NOT NULL,
  lease_id TEXT,
  lease_owner TEXT,
  lease_expires_at INTEGER,
  last_error TEXT,
  tokens INTEGER,
  truncated_tokens INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  overflow TEXT NOT NULL DEFAULT 'truncate' CHECK (overflow IN ('split', 'truncate', 'pool')),
  overlap_tokens INTEGER NOT NULL DEFAULT 0,
  windows INTEGER,
  model TEXT,
  profile TEXT,
  -- Times the chunk was taken back from a worker that neither acked, failed nor released it.
  stalls INTEGER NOT NULL DEFAULT 0,
  dead_at INTEGER,
  -- Fair-queuing rank: reservations take the lowest rank first (seq breaks ties), and each
  -- collection gets FAIR_SHARE chunks per rank, so one collection's backlog cannot starve another.
  fair_rank INTEGER NOT NULL DEFAULT 0
);`;

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
  updated_at INTEGER NOT NULL,
  discarded INTEGER NOT NULL DEFAULT 0,
  superseded INTEGER NOT NULL DEFAULT 0,
  cancelled INTEGER NOT NULL DEFAULT 0,
  -- When nothing was left to do (queued + running = 0); NULL while work is pending. Retention
  -- counts from here.
  done_at INTEGER
);

-- The documents of each collection: \`listed\` while the collection has it (for listings and sync),
-- and its floor: the version below which its chunks must not be (or stay) stored, set by a
-- replacement (its first chunk's seq) or a delete (a fresh seq; the row stays unlisted as a
-- tombstone until retention). Floors only grow; 0 = none.
CREATE TABLE IF NOT EXISTS queue_documents (
  collection TEXT NOT NULL,
  document_id TEXT NOT NULL,
  floor INTEGER NOT NULL DEFAULT 0,
  kind TEXT NOT NULL DEFAULT 'none' CHECK (kind IN ('none', 'replace', 'delete')),
  listed INTEGER NOT NULL DEFAULT 1,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (collection, document_id)
);
CREATE INDEX IF NOT EXISTS queue_documents_tombstones ON queue_documents (updated_at) WHERE listed = 0;

-- Per collection, the rank its latest chunk got and how many chunks of it that rank holds.
CREATE TABLE IF NOT EXISTS queue_fairness (
  collection TEXT PRIMARY KEY,
  rank INTEGER NOT NULL,
  fill INTEGER NOT NULL
);

${CHUNKS_TABLE.replace("{{name}}", "queue_chunks")}

CREATE TABLE IF NOT EXISTS queue_counters (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  pending INTEGER NOT NULL,
  pending_tokens INTEGER NOT NULL,
  running INTEGER NOT NULL,
  dead INTEGER NOT NULL
);
INSERT OR IGNORE INTO queue_counters (id, pending, pending_tokens, running, dead) VALUES (1, 0, 0, 0, 0);
`;

/** Indexes of queue_chunks; created after any rebuild, since dropping the old table drops them. */
const CHUNK_INDEXES = `
DROP INDEX IF EXISTS queue_chunks_key;
DROP INDEX IF EXISTS queue_chunks_reserve;
-- Reservations: ready chunks by fair rank, then seq. Every row under 'queued' is ready now
-- (retries wait as 'retrying'), so a reservation reads exactly the rows it takes.
CREATE INDEX IF NOT EXISTS queue_chunks_fair ON queue_chunks (state, fair_rank, seq);
-- All dead letters in seq order, and the running ones for recovery.
CREATE INDEX IF NOT EXISTS queue_chunks_state_seq ON queue_chunks (state, seq);
-- Due retries and expired leases without scanning the queue.
CREATE INDEX IF NOT EXISTS queue_chunks_available ON queue_chunks (state, available_at);
-- A job's dead letters in seq order (rowid is seq); partial, so inserting queued chunks does not pay for it.
CREATE INDEX IF NOT EXISTS queue_chunks_job_dead ON queue_chunks (job_id) WHERE state = 'dead';
CREATE INDEX IF NOT EXISTS queue_chunks_lease ON queue_chunks (lease_id) WHERE lease_id IS NOT NULL;
-- Expired dead letters, oldest first.
CREATE INDEX IF NOT EXISTS queue_chunks_dead_at ON queue_chunks (dead_at) WHERE state = 'dead';
-- Receipts of one job, a page at a time in seq order.
CREATE INDEX IF NOT EXISTS queue_chunks_job_seq ON queue_chunks (job_id, seq);
`;

/** Columns added to queue_jobs after the first release; ADD COLUMN keeps existing rows. */
const ADDED_JOB_COLUMNS: ReadonlyArray<readonly [string, string]> = [
  ["discarded", "INTEGER NOT NULL DEFAULT 0"],
  ["superseded", "INTEGER NOT NULL DEFAULT 0"],
  ["cancelled", "INTEGER NOT NULL DEFAULT 0"],
  ["done_at", "INTEGER"],
  // A replacement job: the documents it replaces (JSON array), its first seq, and its cleanup.
  ["replace_docs", "TEXT"],
  ["first_seq", "INTEGER"],
  ["finalized_at", "INTEGER"],
  ["deleted_points", "INTEGER NOT NULL DEFAULT 0"],
  ["deleted_ids", "TEXT"],
];

/** Indexes of queue_jobs, created after its columns exist. */
const JOB_INDEXES = `
-- Retention: finished jobs, oldest first.
CREATE INDEX IF NOT EXISTS queue_jobs_done ON queue_jobs (done_at) WHERE done_at IS NOT NULL;
-- Job listings, newest first: jobs with work left, then finished ones; per collection too.
DROP INDEX IF EXISTS queue_jobs_created;
CREATE INDEX IF NOT EXISTS queue_jobs_active ON queue_jobs (created_at, id) WHERE done_at IS NULL;
CREATE INDEX IF NOT EXISTS queue_jobs_finished ON queue_jobs (created_at, id) WHERE done_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS queue_jobs_collection ON queue_jobs (collection, created_at, id);
-- Replacement jobs whose old points are still to be deleted.
CREATE INDEX IF NOT EXISTS queue_jobs_finalize ON queue_jobs (done_at)
  WHERE replace_docs IS NOT NULL AND finalized_at IS NULL;
-- What a collection still has queued (search before anything of it is stored).
CREATE INDEX IF NOT EXISTS queue_jobs_active_collection ON queue_jobs (collection) WHERE done_at IS NULL;
`;

/**
 * Idempotent, and migrates files written by earlier versions; immediate so that two processes
 * opening a fresh (or old) file at once do not race.
 */
export function createQueueSchema(db: SqliteDatabase): void {
  db.transaction(() => {
    db.exec(SCHEMA);
    migrateJobs(db);
    db.exec(JOB_INDEXES);
    migrateChunks(db);
    db.exec(CHUNK_INDEXES);
  }).immediate();
}

function columnNames(db: SqliteDatabase, table: string): Set<string> {
  const rows = db.prepare<[], { name: string }>(`PRAGMA table_info(${table})`).all();
  return new Set(rows.map((r) => r.name));
}

function migrateJobs(db: SqliteDatabase): void {
  const existing = columnNames(db, "queue_jobs");
  for (const [name, definition] of ADDED_JOB_COLUMNS) {
    if (!existing.has(name)) db.exec(`ALTER TABLE queue_jobs ADD COLUMN ${name} ${definition}`);
  }
  if (!existing.has("done_at")) {
    // Jobs finished before retention existed start their retention from their last change.
    db.exec("UPDATE queue_jobs SET done_at = updated_at WHERE queued + running = 0");
  }
}

/**
 * Earlier schemas' CHECK on `state` lacks states added since ('discarded', then 'retrying',
 * 'superseded', 'cancelled'), and their CHECK on `overflow` lacks 'pool'; SQLite cannot alter a
 * CHECK, so an old queue_chunks is rebuilt (copy, drop, rename) with the new columns at their defaults.
 * Nothing references queue_chunks, and seq values (AUTOINCREMENT) are kept, so leases, receipts and
 * dead-letter ids stay valid.
 */
function migrateChunks(db: SqliteDatabase): void {
  const row = db
    .prepare<[], { sql: string }>(
      "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'queue_chunks'",
    )
    .get();
  if (row === undefined || (row.sql.includes("'cancelled'") && row.sql.includes("'pool'"))) return;

  const oldColumns = columnNames(db, "queue_chunks");
  db.exec("DROP TABLE IF EXISTS queue_chunks_migrating");
  db.exec(CHUNKS_TABLE.replace("{{name}}", "queue_chunks_migrating"));
  const newColumns = columnNames(db, "queue_chunks_migrating");
  const shared = [...oldColumns].filter((c) => newColumns.has(c)).join(", ");
  db.exec(`INSERT INTO queue_chunks_migrating (${shared}) SELECT ${shared} FROM queue_chunks`);
  if (!oldColumns.has("dead_at")) {
    db.exec("UPDATE queue_chunks_migrating SET dead_at = updated_at WHERE state = 'dead'");
  }
  // Waiting retries get their own state, so that every 'queued' row is ready to run.
  db.exec(`UPDATE queue_chunks_migrating SET state = 'retrying'
    WHERE state = 'queued' AND attempts > 0 AND last_error IS NOT NULL`);
  const sequence = db
    .prepare<[], { seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'queue_chunks'")
    .get();
  db.exec("DROP TABLE queue_chunks");
  db.exec("ALTER TABLE queue_chunks_migrating RENAME TO queue_chunks");
  if (sequence !== undefined) {
    // Keep AUTOINCREMENT's high-water mark, so seq values of deleted rows are never reused.
    const updated = db
      .prepare<[number]>("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'queue_chunks'")
      .run(sequence.seq);
    if (updated.changes === 0) {
      db.prepare<[number]>("INSERT INTO sqlite_sequence (name, seq) VALUES ('queue_chunks', ?)").run(
        sequence.seq,
      );
    }
  }
}
