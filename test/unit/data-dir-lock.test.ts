import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { DataDirLock, DataDirLockedError, isStale } from "../../src/lifecycle/data-dir-lock.js";
import { tempDir } from "../helpers/paths.js";

/** A pid that certainly ran and is gone: a child that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]);
  return Number(child.stdout.toString());
}

const holder = (over: Partial<{ pid: number; host: string; token: string }>) => ({
  pid: 1,
  host: "h1",
  started_at: "2026-01-01T00:00:00.000Z",
  token: "0000000000000000",
  ...over,
});

describe("DataDirLock", () => {
  it("a second acquire in the same DATA_DIR refuses, naming pid, host and start time", () => {
    const dir = tempDir("lock");
    const first = DataDirLock.acquire(dir);
    try {
      assert.throws(
        () => DataDirLock.acquire(dir),
        (error: unknown) =>
          error instanceof DataDirLockedError &&
          error.message.includes(`pid ${process.pid} on host `) &&
          error.message.includes(first.holder.started_at),
      );
    } finally {
      first.release();
    }
    assert.equal(existsSync(join(dir, "rag-embed.lock")), false, "released = removed");
    DataDirLock.acquire(dir).release();
  });

  it("a dead process's lock on this host is taken over at once", () => {
    const dir = tempDir("lock-dead");
    const gone = DataDirLock.acquire(dir, { pid: deadPid() });
    // Not released: as if SIGKILLed (its token is still in this process's table, but the pid differs).
    const next = DataDirLock.acquire(dir);
    assert.equal(next.tookOver?.pid, gone.holder.pid);
    assert.equal(JSON.parse(readFileSync(join(dir, "rag-embed.lock"), "utf8")).token, next.holder.token);
    gone.release(); // not its lock any more: leaves the new one alone
    assert.ok(existsSync(join(dir, "rag-embed.lock")));
    next.release();
  });

  it("a lock of another host is respected while its heartbeat is fresh, taken over once it is silent", () => {
    const dir = tempDir("lock-host");
    const path = join(dir, "rag-embed.lock");
    writeFileSync(path, JSON.stringify(holder({ host: "elsewhere", pid: process.pid })));
    assert.throws(() => DataDirLock.acquire(dir), /pid \d+ on host elsewhere/);
    const old = new Date(Date.now() - 120_000);
    utimesSync(path, old, old);
    const lock = DataDirLock.acquire(dir);
    assert.equal(lock.tookOver?.host, "elsewhere");
    lock.release();
  });

  it("judges staleness by host, pid, token and heartbeat age", () => {
    const self = { pid: process.pid, host: "h1" };
    const now = 1_000_000;
    // this host, a live pid (ours is certainly alive) with a fresh heartbeat, but a token we do not hold:
    // an earlier incarnation of this process's pid (container restart), so stale
    assert.equal(isStale(holder({ pid: process.pid }), now, self, now), true);
    // this host, another live pid: alive while touched recently; a reused pid once silent
    assert.equal(isStale(holder({ pid: process.ppid }), now - 1_000, self, now), false);
    assert.equal(isStale(holder({ pid: process.ppid }), now - 120_000, self, now), true);
    // this host, a pid that is gone: stale even with a fresh heartbeat
    assert.equal(isStale(holder({ pid: deadPid() }), now, self, now), true);
    // another host: only the heartbeat can tell
    assert.equal(isStale(holder({ host: "h2", pid: 999_999 }), now - 30_000, self, now), false);
    assert.equal(isStale(holder({ host: "h2" }), now - 61_000, self, now), true);
    assert.equal(isStale(holder({ host: "h2" }), now - 10_000, self, now, { staleAfterMs: 5_000 }), true);
  });

  it("a file that is no lock of ours is replaced", () => {
    const dir = tempDir("lock-junk");
    writeFileSync(join(dir, "rag-embed.lock"), "not json");
    const lock = DataDirLock.acquire(dir);
    assert.equal(lock.tookOver, undefined);
    lock.release();
  });
});
