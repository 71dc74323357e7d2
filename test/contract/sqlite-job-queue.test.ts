import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { NewChunk } from "../../src/domain/types.js";
import { defaultLeaseOwner } from "../../src/queue/sqlite/lease-owner.js";
import { SqliteJobQueue } from "../../src/queue/sqlite/sqlite-job-queue.js";
import { openSqliteDatabase, type SqliteDatabase } from "../../src/storage/sqlite-database.js";
import { jobQueueContract, MP, TRUNCATE } from "./job-queue.contract.js";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const LONG_MS = 600_000;

/** The queue tables exactly as the first release created them. */
const FIRST_SCHEMA = `
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
CREATE INDEX IF NOT EXISTS queue_chunks_reserve ON queue_chunks (state, seq);
CREATE INDEX IF NOT EXISTS queue_chunks_available ON queue_chunks (state, available_at);
CREATE INDEX IF NOT EXISTS queue_chunks_job_dead ON queue_chunks (job_id) WHERE state = 'dead';
CREATE INDEX IF NOT EXISTS queue_chunks_lease ON queue_chunks (lease_id) WHERE lease_id IS NOT NULL;
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

function tempFile(): { file: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), "q-"));
  return { file: join(dir, "q.sqlite"), dir };
}

function fakeClock(start = 1_700_000_000_000) {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

function chunk(chunkId: string, estimatedTokens = 10): NewChunk {
  return {
    chunkId,
    text: `text ${chunkId}`,
    documentId: null,
    payload: { chunkId },
    estimatedTokens,
    overflow: TRUNCATE,
  };
}

/** The pid of a process that has exited, so no live process can own it (barring pid reuse). */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", ""]);
  assert.ok(child.pid);
  return child.pid;
}

jobQueueContract("SqliteJobQueue", async (options = {}) => {
  const { file, dir } = tempFile();
  const db = openSqliteDatabase(file);
  const clock = fakeClock();
  const queue = new SqliteJobQueue(db, { ...options, now: clock.now });
  return {
    queue,
    clock,
    async cleanup() {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe("SqliteJobQueue specifics", () => {
  let file: string;
  let dir: string;
  let db: SqliteDatabase;
  let clock: ReturnType<typeof fakeClock>;
  const extraDbs: SqliteDatabase[] = [];

  beforeEach(() => {
    ({ file, dir } = tempFile());
    db = openSqliteDatabase(file);
    clock = fakeClock();
  });

  afterEach(() => {
    for (const other of [db, ...extraDbs.splice(0)]) if (other.open) other.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function openAgain(): SqliteDatabase {
    const other = openSqliteDatabase(file);
    extraDbs.push(other);
    return other;
  }

  /** Counters must equal what the rows say, or stats and admission drift over time. */
  function assertCountersMatchRows(database: SqliteDatabase): void {
    const byState = database
      .prepare<[], { state: string; n: number; tokens: number }>(
        "SELECT state, COUNT(*) AS n, SUM(est_tokens) AS tokens FROM queue_chunks GROUP BY state",
      )
      .all();
    const n = (s: string) => byState.find((r) => r.state === s)?.n ?? 0;
    const tokens = (s: string) => byState.find((r) => r.state === s)?.tokens ?? 0;
    const states = [
      "queued",
      "retrying",
      "running",
      "stored",
      "unchanged",
      "superseded",
      "dead",
      "discarded",
      "cancelled",
    ];
    assert.equal(
      states.reduce((sum, state) => sum + n(state), 0),
      byState.reduce((a, r) => a + r.n, 0),
      "no unknown state",
    );
    const counters = database
      .prepare("SELECT pending, pending_tokens, running, dead FROM queue_counters")
      .get();
    assert.deepEqual(counters, {
      pending: n("queued") + n("retrying") + n("running"),
      pending_tokens: tokens("queued") + tokens("retrying") + tokens("running"),
      running: n("running"),
      dead: n("dead"),
    });
    const drift = database
      .prepare(
        `SELECT j.id FROM queue_jobs j WHERE
           j.queued != (SELECT COUNT(*) FROM queue_chunks c WHERE c.job_id = j.id AND c.state IN ('queued', 'retrying')) OR
           j.superseded != (SELECT COUNT(*) FROM queue_chunks c WHERE c.job_id = j.id AND c.state = 'superseded') OR
           j.cancelled != (SELECT COUNT(*) FROM queue_chunks c WHERE c.job_id = j.id AND c.state = 'cancelled') OR
           j.running != (SELECT COUNT(*) FROM queue_chunks c WHERE c.job_id = j.id AND c.state = 'running') OR
           j.stored != (SELECT COUNT(*) FROM queue_chunks c WHERE c.job_id = j.id AND c.state = 'stored') OR
           j.unchanged != (SELECT COUNT(*) FROM queue_chunks c WHERE c.job_id = j.id AND c.state = 'unchanged') OR
           j.dead != (SELECT COUNT(*) FROM queue_chunks c WHERE c.job_id = j.id AND c.state = 'dead') OR
           j.discarded != (SELECT COUNT(*) FROM queue_chunks c WHERE c.job_id = j.id AND c.state = 'discarded') OR
           j.total != (SELECT COUNT(*) FROM queue_chunks c WHERE c.job_id = j.id)`,
      )
      .all();
    assert.deepEqual(drift, [], "job counters drifted from their chunk rows");
  }

  it("creates only queue_-prefixed tables, idempotently", () => {
    new SqliteJobQueue(db);
    new SqliteJobQueue(db);
    const tables = db
      .prepare<[], { name: string }>(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
      )
      .all()
      .map((r) => r.name);
    assert.deepEqual(tables, [
      "queue_chunks",
      "queue_counters",
      "queue_documents",
      "queue_fairness",
      "queue_jobs",
    ]);
  });

  it("drops a chunk's text and payload once it is stored, keeps them while it may still be needed", async () => {
    const queue = new SqliteJobQueue(db, { now: clock.now });
    await queue.enqueue({ collection: "a", chunks: [chunk("keep", 1), chunk("done", 1)], maxQueueSize: 10 });
    const lease = await queue.reserve({ maxChunks: 2, maxTokens: 100, leaseMs: 60_000 });
    assert.ok(lease && lease.chunks.length === 2);
    const [done, keep] = [...lease.chunks].sort((a, b) =>
      a.chunkId === "done" ? -1 : b.chunkId === "done" ? 1 : 0,
    );
    await queue.ack(lease.id, [
      { seq: done!.seq, state: "stored", tokens: 3, truncatedTokens: 0, windows: 1, ...MP },
    ]);
    await queue.fail(lease.id, { seqs: [keep!.seq], error: "boom", retryDelayMs: 0, maxAttempts: 1 });
    const rows = db
      .prepare<[], { chunk_id: string; text: string; payload: string }>(
        "SELECT chunk_id, text, payload FROM queue_chunks ORDER BY chunk_id",
      )
      .all();
    assert.deepEqual(
      rows.map((r) => [r.chunk_id, r.text === "", r.payload === "{}"]),
      [
        ["done", true, true],
        ["keep", false, false],
      ],
      "the stored chunk's copy is gone; the dead letter keeps its text for replay",
    );
  });

  it("keeps counters equal to the rows through a mixed workload", async () => {
    const queue = new SqliteJobQueue(db, { now: clock.now });
    for (let j = 0; j < 5; j++) {
      await queue.enqueue({
        collection: j % 2 ? "a" : "b",
        chunks: Array.from({ length: 20 }, (_, i) => chunk(`c${i % 12}`, 1 + i)),
        maxQueueSize: 1_000,
      });
    }
    for (let round = 0; round < 40; round++) {
      const lease = await queue.reserve({
        maxChunks: 7,
        maxTokens: 60,
        leaseMs: round % 5 === 0 ? 10 : LONG_MS,
      });
      if (lease === null) {
        clock.advance(50);
        continue;
      }
      const [first, second, third, ...rest] = lease.chunks;
      if (first)
        await queue.ack(lease.id, [
          { seq: first.seq, state: "stored", tokens: 3, truncatedTokens: 1, windows: 1, ...MP },
        ]);
      if (second)
        await queue.fail(lease.id, { seqs: [second.seq], error: "e", retryDelayMs: 20, maxAttempts: 2 });
      if (third) await queue.release(lease.id);
      if (round % 5 !== 0) {
        await queue.ack(
          lease.id,
          rest.map((c) => ({ seq: c.seq, state: "unchanged" as const, ...MP })),
        );
      }
      clock.advance(15);
      assertCountersMatchRows(db);
    }
  });

  it("a second instance on the same file sees the same jobs, leases and capacity", async () => {
    const q1 = new SqliteJobQueue(db, { now: clock.now });
    const q2 = new SqliteJobQueue(openAgain(), { now: clock.now });
    const result = await q1.enqueue({ collection: "c", chunks: [chunk("a"), chunk("b")], maxQueueSize: 3 });
    assert.ok(result.accepted);
    assert.deepEqual(await q2.stats(), await q1.stats());
    assert.deepEqual(await q2.getJob(result.jobId), await q1.getJob(result.jobId));

    const lease = await q1.reserve({ maxChunks: 1, maxTokens: 100, leaseMs: LONG_MS });
    assert.deepEqual(
      lease?.chunks.map((c) => c.chunkId),
      ["a"],
    );
    const other = await q2.reserve({ maxChunks: 10, maxTokens: 100, leaseMs: LONG_MS });
    assert.deepEqual(
      other?.chunks.map((c) => c.chunkId),
      ["b"],
    );
    const refused = await q2.enqueue({ collection: "c", chunks: [chunk("c"), chunk("d")], maxQueueSize: 3 });
    assert.ok(!refused.accepted);
    assert.deepEqual([refused.limit, refused.pending, refused.maxQueueSize], ["chunks", 2, 3]);
  });

  it("keeps every accepted chunk and lease across close and reopen", async () => {
    const queue = new SqliteJobQueue(db, { now: clock.now });
    const jobs: string[] = [];
    for (let j = 0; j < 3; j++) {
      const r = await queue.enqueue({
        collection: "c",
        chunks: [chunk(`j${j}-a`), chunk(`j${j}-b`)],
        maxQueueSize: 100,
      });
      assert.ok(r.accepted);
      jobs.push(r.jobId);
    }
    const lease = await queue.reserve({ maxChunks: 1, maxTokens: 100, leaseMs: 1_000 });
    assert.ok(lease);
    const stats = await queue.stats();
    await queue.close();
    assert.equal(db.open, true, "close() leaves the caller's database open");
    db.close();

    const reopened = new SqliteJobQueue(openAgain(), { now: clock.now });
    assert.deepEqual(await reopened.stats(), stats);
    assert.deepEqual(await reopened.getJob(jobs[0]!).then((j) => j?.counts.running), 1);
    const rest = await reopened.reserve({ maxChunks: 100, maxTokens: 1_000, leaseMs: LONG_MS });
    assert.deepEqual(
      rest?.chunks.map((c) => c.chunkId),
      ["j0-b", "j1-a", "j1-b", "j2-a", "j2-b"],
      "a lease of a live process survives the reopen",
    );
    clock.advance(1_000);
    const expired = await reopened.reserve({ maxChunks: 100, maxTokens: 1_000, leaseMs: LONG_MS });
    assert.deepEqual(
      expired?.chunks.map((c) => c.chunkId),
      ["j0-a"],
    );
  });

  it("releases on open only the leases of dead processes on this host", async () => {
    const setup = new SqliteJobQueue(db, { now: clock.now });
    await setup.enqueue({
      collection: "c",
      chunks: [chunk("dead"), chunk("live"), chunk("remote")],
      maxQueueSize: 100,
    });
    const pid = deadPid();
    const owners = [`${hostname()}:${pid}`, `${hostname()}:${process.pid}`, `elsewhere:${pid}`];
    // All constructed before any reserves, since constructing one recovers the others' orphans.
    const workers = owners.map((ownerId) => new SqliteJobQueue(db, { ownerId, now: clock.now }));
    for (const worker of workers) {
      assert.equal(
        (await worker.reserve({ maxChunks: 1, maxTokens: 100, leaseMs: LONG_MS }))?.chunks.length,
        1,
      );
    }
    assert.equal((await setup.stats()).running, 3);

    const restarted = new SqliteJobQueue(db, { now: clock.now });
    assert.equal((await restarted.stats()).running, 2);
    const lease = await restarted.reserve({ maxChunks: 10, maxTokens: 100, leaseMs: LONG_MS });
    assert.deepEqual(
      lease?.chunks.map((c) => [c.chunkId, c.attempts]),
      [["dead", 0]],
    );
    assert.equal(restarted.recoverOrphans(), 0, "nothing left to recover");
    assertCountersMatchRows(db);
  });

  it("takes back the leases of an earlier process that had this very pid (a restarted container's pid 1)", async () => {
    const setup = new SqliteJobQueue(db, { now: clock.now });
    await setup.enqueue({
      collection: "c",
      chunks: [chunk("before-restart"), chunk("mine")],
      maxQueueSize: 10,
    });
    const earlier = new SqliteJobQueue(db, {
      ownerId: `${hostname()}:${process.pid}:0badc0de`,
      now: clock.now,
    });
    const current = new SqliteJobQueue(db, { ownerId: defaultLeaseOwner(), now: clock.now });
    assert.ok(await earlier.reserve({ maxChunks: 1, maxTokens: 100, leaseMs: LONG_MS }));
    assert.ok(await current.reserve({ maxChunks: 1, maxTokens: 100, leaseMs: LONG_MS }));

    const restarted = new SqliteJobQueue(db, { now: clock.now });
    assert.equal((await restarted.stats()).running, 1, "this process's own lease is not an orphan");
    const lease = await restarted.reserve({ maxChunks: 10, maxTokens: 100, leaseMs: LONG_MS });
    assert.deepEqual(
      lease?.chunks.map((c) => c.chunkId),
      ["before-restart"],
    );
    assertCountersMatchRows(db);
  });

  it("counts an orphan recovery as a stall and dead-letters at maxStalls", async () => {
    const setup = new SqliteJobQueue(db, { now: clock.now, maxStalls: 1 });
    const r = await setup.enqueue({ collection: "c", chunks: [chunk("crasher")], maxQueueSize: 10 });
    assert.ok(r.accepted);
    const worker = new SqliteJobQueue(db, { ownerId: `${hostname()}:${deadPid()}`, now: clock.now });
    assert.ok(await worker.reserve({ maxChunks: 1, maxTokens: 100, leaseMs: LONG_MS }));

    const restarted = new SqliteJobQueue(db, { now: clock.now, maxStalls: 1 });
    assert.deepEqual(await restarted.stats(), { pending: 0, running: 0, dead: 1, pendingTokens: 0 });
    const dead = await restarted.listDeadLetters({ limit: 10 });
    assert.deepEqual(
      dead.items.map((d) => [d.chunkId, d.reason, d.deadAt]),
      [
        [
          "crasher",
          "worker stopped while processing this chunk 1 times (crash, kill or lease timeout)",
          new Date(clock.now()).toISOString(),
        ],
      ],
    );
    assert.equal((await restarted.getJob(r.jobId))?.state, "done");
    assertCountersMatchRows(db);
  });

  it("a replay resets a dead letter's stall count, and a retry waits out of the ready index", async () => {
    const queue = new SqliteJobQueue(db, { now: clock.now, maxStalls: 1 });
    await queue.enqueue({ collection: "c", chunks: [chunk("x"), chunk("y")], maxQueueSize: 10 });
    const lease = await queue.reserve({ maxChunks: 2, maxTokens: 100, leaseMs: 10 });
    assert.ok(lease);
    clock.advance(11);
    await queue.fail(lease.id, { seqs: [], error: "none", retryDelayMs: 0, maxAttempts: 5 });
    assert.equal(await queue.reserve({ maxChunks: 2, maxTokens: 100, leaseMs: LONG_MS }), null);
    assert.equal((await queue.stats()).dead, 2, "one stall with maxStalls 1 dead-letters both");
    assert.equal(await queue.replayDeadLetters({ all: true }), 2);
    const again = await queue.reserve({ maxChunks: 2, maxTokens: 100, leaseMs: 10 });
    assert.ok(again);
    const [x, y] = again.chunks;
    await queue.fail(again.id, { seqs: [x!.seq], error: "flaky", retryDelayMs: 5_000, maxAttempts: 5 });
    const states = db
      .prepare<[], { chunk_id: string; state: string }>(
        "SELECT chunk_id, state FROM queue_chunks ORDER BY seq",
      )
      .all();
    assert.deepEqual(
      states.map((r) => [r.chunk_id, r.state]),
      [
        ["x", "retrying"],
        ["y", "running"],
      ],
    );
    clock.advance(11);
    assert.equal(await queue.reserve({ maxChunks: 2, maxTokens: 100, leaseMs: LONG_MS }), null);
    assert.equal((await queue.stats()).dead, 1, "y stalled once after its replay: dead again at maxStalls 1");
    assert.equal(y!.chunkId, "y");
    assertCountersMatchRows(db);
  });

  it("replays 2,500 dead letters in pages, every one of them", async () => {
    const queue = new SqliteJobQueue(db, { now: clock.now });
    const many = Array.from({ length: 2_500 }, (_, i) => chunk(`m${i}`, 1));
    await queue.enqueue({ collection: "c", chunks: many, maxQueueSize: 10_000 });
    const lease = await queue.reserve({ maxChunks: 10_000, maxTokens: 100_000, leaseMs: LONG_MS });
    assert.equal(lease?.chunks.length, 2_500);
    await queue.fail(lease!.id, {
      seqs: lease!.chunks.map((c) => c.seq),
      error: "x",
      retryDelayMs: 0,
      maxAttempts: 1,
    });
    assert.equal(await queue.replayDeadLetters({ all: true }), 2_500);
    assert.deepEqual(await queue.stats(), { pending: 2_500, running: 0, dead: 0, pendingTokens: 2_500 });
    assertCountersMatchRows(db);
  });

  it("migrates a file written by the first schema and keeps its rows", async () => {
    db.exec(FIRST_SCHEMA);
    const t = clock.now();
    db.prepare(
      `INSERT INTO queue_jobs (id, collection, total, queued, dead, created_at, updated_at)
       VALUES ('old-job', 'c', 3, 2, 1, ?, ?)`,
    ).run(t, t);
    const insert = db.prepare(
      `INSERT INTO queue_chunks (seq, job_id, collection, chunk_id, document_id, text, payload, est_tokens,
         state, attempts, available_at, last_error, created_at, updated_at)
       VALUES (?, 'old-job', 'c', ?, NULL, 'old text', '{"k":1}', 4, ?, ?, ?, ?, ?, ?)`,
    );
    insert.run(41, "q1", "queued", 0, t, null, t, t);
    insert.run(42, "q2", "queued", 0, t, null, t, t);
    insert.run(43, "d1", "dead", 3, t, "old failure", t, t - 5);
    db.prepare("UPDATE sqlite_sequence SET seq = 50 WHERE name = 'queue_chunks'").run();
    db.prepare("UPDATE queue_counters SET pending = 2, pending_tokens = 8, dead = 1").run();

    const queue = new SqliteJobQueue(db, { now: clock.now });
    new SqliteJobQueue(openAgain(), { now: clock.now });
    const columns = db
      .prepare<[], { name: string }>("PRAGMA table_info(queue_chunks)")
      .all()
      .map((c) => c.name);
    for (const c of ["overflow", "overlap_tokens", "windows", "model", "profile", "stalls", "dead_at"]) {
      assert.ok(columns.includes(c), `queue_chunks.${c} added`);
    }
    assert.deepEqual(await queue.stats(), { pending: 2, running: 0, dead: 1, pendingTokens: 8 });
    assert.deepEqual(
      (await queue.listChunks("old-job", { limit: 10 })).items.map((r) => [
        r.seq,
        r.chunkId,
        r.state,
        r.overflow,
      ]),
      [
        [41, "q1", "queued", "truncate"],
        [42, "q2", "queued", "truncate"],
        [43, "d1", "dead", "truncate"],
      ],
    );
    assert.deepEqual((await queue.listDeadLetters({ limit: 10 })).items, [
      {
        seq: 43,
        jobId: "old-job",
        collection: "c",
        chunkId: "d1",
        reason: "old failure",
        attempts: 3,
        deadAt: new Date(t - 5).toISOString(),
      },
    ]);
    const lease = await queue.reserve({ maxChunks: 1, maxTokens: 100, leaseMs: LONG_MS });
    assert.deepEqual(lease?.chunks[0], {
      seq: 41,
      version: 41,
      jobId: "old-job",
      collection: "c",
      chunkId: "q1",
      documentId: null,
      text: "old text",
      payload: { k: 1 },
      estimatedTokens: 4,
      attempts: 0,
      overflow: TRUNCATE,
    });
    assert.equal(await queue.discardDeadLetters({ seqs: [43] }), 1, "the new state passes the CHECK");
    const job = await queue.getJob("old-job");
    assert.deepEqual(job?.counts, {
      total: 3,
      queued: 1,
      running: 1,
      stored: 0,
      unchanged: 0,
      failed: 0,
      dead: 0,
      discarded: 1,
      superseded: 0,
      cancelled: 0,
    });
    const r = await queue.enqueue({ collection: "c", chunks: [chunk("new")], maxQueueSize: 10 });
    assert.ok(r.accepted);
    const [fresh] = (await queue.listChunks(r.jobId, { limit: 1 })).items;
    assert.equal(fresh?.seq, 51, "seq continues after the old high-water mark");
    const indexes = db
      .prepare<[], { name: string }>(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'queue_chunks' AND sql IS NOT NULL ORDER BY name",
      )
      .all()
      .map((i) => i.name);
    assert.ok(
      indexes.includes("queue_chunks_fair") &&
        indexes.includes("queue_chunks_job_seq") &&
        !indexes.includes("queue_chunks_key"),
      String(indexes),
    );
    assertCountersMatchRows(db);
  });

  it("rebuilds a queue whose overflow CHECK predates pool, keeping its rows", async () => {
    const before = new SqliteJobQueue(db, { now: clock.now });
    const kept = await before.enqueue({ collection: "c", chunks: [chunk("kept")], maxQueueSize: 10 });
    assert.ok(kept.accepted);
    // Put back the CHECK a file written before pool has: the same table with the older CHECK.
    const { sql } = db
      .prepare<[], { sql: string }>(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'queue_chunks'",
      )
      .get()!;
    db.exec(
      sql
        .replace("queue_chunks", "queue_chunks_old")
        .replace("'split', 'truncate', 'pool'", "'split', 'truncate'"),
    );
    db.exec(`INSERT INTO queue_chunks_old SELECT * FROM queue_chunks; DROP TABLE queue_chunks;
      ALTER TABLE queue_chunks_old RENAME TO queue_chunks`);
    assert.throws(() => db.prepare("UPDATE queue_chunks SET overflow = 'pool'").run(), /CHECK/);

    const queue = new SqliteJobQueue(db, { now: clock.now });
    const pooled = await queue.enqueue({
      collection: "c",
      chunks: [{ ...chunk("pooled"), overflow: { policy: "pool", overlapTokens: 8 } }],
      maxQueueSize: 10,
    });
    assert.ok(pooled.accepted, "the rebuilt table takes pool");
    const lease = await queue.reserve({ maxChunks: 10, maxTokens: 1000, leaseMs: LONG_MS });
    assert.deepEqual(
      lease?.chunks.map((c) => [c.chunkId, c.overflow.policy]),
      [
        ["kept", "truncate"],
        ["pooled", "pool"],
      ],
    );
    assertCountersMatchRows(db);
  });

  it("ackSync commits or rolls back with the caller's transaction", async () => {
    const queue = new SqliteJobQueue(db, { now: clock.now });
    const r = await queue.enqueue({ collection: "c", chunks: [chunk("a")], maxQueueSize: 10 });
    assert.ok(r.accepted);
    const lease = await queue.reserve({ maxChunks: 1, maxTokens: 100, leaseMs: LONG_MS });
    assert.ok(lease);
    const outcome = [
      {
        seq: lease.chunks[0]!.seq,
        state: "stored" as const,
        tokens: 4,
        truncatedTokens: 0,
        windows: 1,
        ...MP,
      },
    ];

    const failing = db.transaction(() => {
      queue.ackSync(lease.id, outcome);
      throw new Error("vector upsert failed");
    });
    assert.throws(() => failing.immediate(), /vector upsert failed/);
    assert.equal((await queue.getJob(r.jobId))?.counts.running, 1, "the ack rolled back with the upsert");
    assert.equal((await queue.stats()).pending, 1);

    db.transaction(() => queue.ackSync(lease.id, outcome)).immediate();
    assert.equal((await queue.getJob(r.jobId))?.state, "done");
    assert.deepEqual(db.prepare("SELECT tokens, truncated_tokens, lease_id FROM queue_chunks").get(), {
      tokens: 4,
      truncated_tokens: 0,
      lease_id: null,
    });
    assertCountersMatchRows(db);
  });

  it("lists at most 1000 failures while counting all of them", async () => {
    const queue = new SqliteJobQueue(db, { now: clock.now });
    const r = await queue.enqueue({
      collection: "c",
      chunks: Array.from({ length: 1_005 }, (_, i) => chunk(`c${i}`)),
      maxQueueSize: 10_000,
    });
    assert.ok(r.accepted);
    const lease = await queue.reserve({ maxChunks: 2_000, maxTokens: 1_000_000, leaseMs: LONG_MS });
    assert.ok(lease);
    await queue.fail(lease.id, {
      seqs: lease.chunks.map((c) => c.seq),
      error: "x",
      retryDelayMs: 0,
      maxAttempts: 1,
    });
    const job = await queue.getJob(r.jobId);
    assert.equal(job?.counts.dead, 1_005);
    assert.equal(job?.failures.length, 1_000);
    assert.equal(job?.failures[0]?.chunkId, "c0");
  });

  it("admission stays atomic when two processes enqueue into one file at once", async () => {
    new SqliteJobQueue(db);
    const moduleUrl = pathToFileURL(join(REPO_ROOT, "src/queue/sqlite/sqlite-job-queue.ts")).href;
    const dbUrl = pathToFileURL(join(REPO_ROOT, "src/storage/sqlite-database.ts")).href;
    const script = `
      import { SqliteJobQueue } from ${JSON.stringify(moduleUrl)};
      import { openSqliteDatabase } from ${JSON.stringify(dbUrl)};
      const queue = new SqliteJobQueue(openSqliteDatabase(process.argv[1]));
      // Start together, so the two writers really contend for the last free slots.
      await new Promise((r) => setTimeout(r, Number(process.argv[2]) - Date.now()));
      let accepted = 0;
      for (let i = 0; i < 300; i++) {
        const chunks = Array.from({ length: 10 }, (_, k) => ({
          chunkId: process.pid + "-" + i + "-" + k, text: "t", documentId: null, payload: {}, estimatedTokens: 1,
          overflow: { policy: "truncate", overlapTokens: 0 },
        }));
        const r = await queue.enqueue({ collection: "c", chunks, maxQueueSize: 2000 });
        if (r.accepted) accepted += r.count;
      }
      console.log(accepted);
    `;
    const startAt = String(Date.now() + 2_000);
    const children = [0, 1].map(() =>
      spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, file, startAt], {
        cwd: REPO_ROOT,
        stdio: ["ignore", "pipe", "inherit"],
      }),
    );
    const outputs = await Promise.all(
      children.map(async (child) => {
        let out = "";
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
        });
        const [code] = await once(child, "exit");
        assert.equal(code, 0);
        return Number(out.trim());
      }),
    );
    const queue = new SqliteJobQueue(db);
    assert.equal((await queue.stats()).pending, 2_000);
    assert.equal(
      outputs.reduce((a, b) => a + b, 0),
      2_000,
    );
    assertCountersMatchRows(db);
  });
});
