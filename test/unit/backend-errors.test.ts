import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { AppError, ERROR_CODES, ProcessingError } from "../../src/domain/errors.js";
import { classifyRedisError } from "../../src/queue/redis/redis-errors.js";
import { guardBackend } from "../../src/server/backend-guard.js";
import { BackendHealth } from "../../src/server/backend-health.js";
import { ERROR_STATUS } from "../../src/server/error-status.js";
import { classifySqliteError } from "../../src/storage/sqlite-errors.js";
import { REPO_ROOT } from "../helpers/paths.js";

function sqliteError(code: string, message = "sqlite says no"): Error {
  return Object.assign(new Error(message), { name: "SqliteError", code });
}

describe("the error catalog", () => {
  it("the README's error table lists every code the server can return, with its status", () => {
    const readme = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("### Errors"), readme.indexOf("## Qdrant"));
    const listed = new Map<string, number>();
    for (const row of section.split("\n").filter((line) => line.startsWith("| `"))) {
      const [codes, status] = row.split("|").slice(1, 3);
      for (const code of codes?.match(/`([a-z_]+)`/g) ?? []) listed.set(code.slice(1, -1), Number(status));
    }
    for (const code of ERROR_CODES) {
      assert.equal(listed.get(code), ERROR_STATUS[code], `README lists ${code} as ${ERROR_STATUS[code]}`);
    }
    assert.deepEqual(
      [...listed.keys()].filter((code) => !(ERROR_CODES as readonly string[]).includes(code)),
      [],
    );
  });
});

describe("backend failures as catalog errors", () => {
  it("SQLite: a full disk is 507, a locked, read-only or failing file makes its user unavailable, a bug is left alone", () => {
    const context = { file: "/data/rag-embed.sqlite", unavailable: "queue_unavailable" as const };
    const full = classifySqliteError(sqliteError("SQLITE_FULL", "database or disk is full"), context);
    assert.equal(full?.code, "insufficient_storage");
    assert.match(full?.message ?? "", /\/data\/rag-embed\.sqlite.*SQLITE_FULL/);
    assert.ok((full?.retryAfterSeconds ?? 0) >= 1);
    for (const code of ["SQLITE_BUSY", "SQLITE_READONLY_DBMOVED", "SQLITE_IOERR_WRITE", "SQLITE_CANTOPEN"]) {
      assert.equal(classifySqliteError(sqliteError(code), context)?.code, "queue_unavailable", code);
    }
    assert.equal(
      classifySqliteError(sqliteError("SQLITE_BUSY"), { ...context, unavailable: "store_unavailable" })?.code,
      "store_unavailable",
    );
    assert.equal(classifySqliteError(sqliteError("SQLITE_CONSTRAINT_UNIQUE"), context), undefined);
    assert.equal(classifySqliteError(new TypeError("x is undefined"), context), undefined);
  });

  it("Redis: no connection or a refusing server is 503, out of memory or unable to persist is 507", () => {
    const unavailable = [
      new Error("Stream isn't writeable and enableOfflineQueue options is false"),
      new Error("Command timed out"),
      Object.assign(new Error("Reached the max retries per request limit (which is 1)."), {
        name: "MaxRetriesPerRequestError",
      }),
      Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6379"), { code: "ECONNREFUSED" }),
      new Error("LOADING Redis is loading the dataset in memory"),
    ];
    for (const error of unavailable)
      assert.equal(classifyRedisError(error)?.code, "queue_unavailable", error.message);
    for (const message of [
      "OOM command not allowed when used memory > 'maxmemory'.",
      "MISCONF Errors writing to the AOF file: No space left on device",
    ]) {
      assert.equal(classifyRedisError(new Error(message))?.code, "insufficient_storage", message);
    }
    assert.equal(
      classifyRedisError(new Error("ERR Error running script (call to f_1): bad argument")),
      undefined,
    );
  });
});

describe("guardBackend", () => {
  const options = (health: BackendHealth) => ({
    label: "the queue",
    unavailable: "queue_unavailable" as const,
    timeoutMs: 50,
    onOutcome: (failure: AppError | null) =>
      failure ? health.failed("queue", failure) : health.answered("queue"),
  });

  it("answers a call that does not return within its time with 503, and records the failure", async () => {
    const health = new BackendHealth();
    const hanging = guardBackend({ stats: () => new Promise<never>(() => {}) }, options(health));
    const started = Date.now();
    await assert.rejects(hanging.stats(), (error: unknown) => {
      assert.ok(error instanceof AppError);
      assert.equal(error.code, "queue_unavailable");
      assert.match(error.message, /did not answer within 50 ms/);
      assert.ok((error.retryAfterSeconds ?? 0) >= 1);
      return true;
    });
    assert.ok(Date.now() - started < 5_000);
    assert.equal(health.report("queue").ok, false);
    assert.ok(health.failingFor("queue", 0));
  });

  it("passes refusals and bugs through, turns a retryable adapter failure into 503", async () => {
    const health = new BackendHealth();
    const target = {
      getJob: async () => {
        throw new AppError("job_not_found", "No job x");
      },
      bug: async () => {
        throw new TypeError("x is undefined");
      },
      down: async () => {
        throw new ProcessingError("Qdrant unreachable (ECONNREFUSED)", {
          retryable: true,
          retryAfterMs: 12_000,
        });
      },
    };
    const guarded = guardBackend(target, options(health));
    await assert.rejects(guarded.getJob(), { code: "job_not_found" });
    assert.equal(health.report("queue").ok, true, "a refusal is an answer");
    await assert.rejects(guarded.bug(), TypeError);
    await assert.rejects(guarded.down(), (error: unknown) => {
      assert.ok(error instanceof AppError);
      assert.equal(error.code, "queue_unavailable");
      assert.equal(error.retryAfterSeconds, 12, "the adapter's Retry-After is kept");
      return true;
    });
  });

  it("leaves a synchronous method synchronous (the embedder's status and info)", () => {
    const health = new BackendHealth();
    const guarded = guardBackend(
      { status: () => ({ engine: "remote", state: "ok" }), info: () => ({ id: "m" }) },
      options(health),
    );
    assert.deepEqual(guarded.status(), { engine: "remote", state: "ok" });
    assert.deepEqual(guarded.info(), { id: "m" });
  });

  it("a 507 is remembered for its Retry-After; reads that succeed meanwhile do not clear it", () => {
    let now = 1_000;
    const health = new BackendHealth(() => now);
    health.failed("queue", new AppError("insufficient_storage", "disk full", { retryAfterSeconds: 30 }));
    health.answered("queue");
    assert.equal(health.outOfSpace("queue")?.code, "insufficient_storage");
    assert.equal(health.report("queue").ok, true, "reachable, only full");
    now += 30_000;
    assert.equal(health.outOfSpace("queue"), null);
  });
});
