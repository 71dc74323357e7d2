import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { HttpServer } from "../../src/main.js";
import type { SqliteDatabase } from "../../src/storage/sqlite-database.js";
import { waitForJobDone } from "../helpers/fixtures.js";
import { startInProcess } from "../helpers/in-process-server.js";
import { REPO_ROOT, tempDir, testModelDir } from "../helpers/paths.js";
import { getJson } from "../helpers/server-process.js";

interface ErrorBody {
  error: { code: string; message: string };
}

interface Status {
  queue: { available: boolean; storage: { ok: boolean; free_bytes?: number; problem?: string } };
}

/**
 * A full disk, simulated with SQLite's own page limit: `PRAGMA max_page_count` set to the file's
 * current size makes every write that needs a new page fail with SQLITE_FULL, exactly as ENOSPC does
 * (SQLite reports both as SQLITE_FULL), without a small filesystem of our own (tmpfs needs root).
 * Raising the limit again is freeing the disk.
 */
describe("full disk: 507 insufficient_storage, /v1/status says unavailable, nothing acknowledged is lost", () => {
  let server: HttpServer;
  let db: SqliteDatabase | undefined;
  const gate = { open: false, waiters: [] as Array<() => void> };

  before(async () => {
    server = await startInProcess(
      {
        BODY_LIMIT_BYTES: "1048576",
        RETRY_BASE_MS: "100",
        RETRY_MAX_MS: "300",
        // Retries outlast the outage; with fewer, chunks would end as dead letters (kept, replayable).
        MAX_ATTEMPTS: "1000",
      },
      {
        onDatabase: (opened) => {
          db = opened;
        },
        // Accepted chunks wait here until the test lets them through, so some are still queued
        // (acknowledged, not stored) when the disk fills up.
        decorateEmbedder: (inner) =>
          new Proxy(inner, {
            get(target, property) {
              const value: unknown = Reflect.get(target, property, target);
              if (property === "embed") {
                return async (...args: Parameters<typeof target.embed>) => {
                  if (!gate.open) await new Promise<void>((resolve) => gate.waiters.push(resolve));
                  return target.embed(...args);
                };
              }
              return typeof value === "function" ? value.bind(target) : value;
            },
          }),
      },
    );
  });
  after(async () => {
    openGate();
    await server.shutdown(2000);
  });

  function openGate(): void {
    gate.open = true;
    for (const resolve of gate.waiters.splice(0)) resolve();
  }

  const ingest = (prefix: string, n: number) =>
    fetch(`${server.url}/v1/collections/docs/chunks`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        chunks: Array.from({ length: n }, (_, i) => ({
          id: `${prefix}-${i}`,
          text: `${prefix} ${i} ${"x ".repeat(200)}`,
        })),
      }),
    });

  it("refuses new work with 507 while the disk is full and stores everything accepted once space is freed", async () => {
    assert.ok(db, "the hook saw the SQLite file");
    const accepted = await ingest("before", 40);
    assert.equal(accepted.status, 202);
    const { job_id: jobId } = (await accepted.json()) as { job_id: string };
    const before = await getJson<Status>(`${server.url}/v1/status`);
    assert.equal(before.body.queue.available, true);

    db.pragma(`max_page_count = ${Number(db.pragma("page_count", { simple: true }))}`);
    const refused = await ingest("full", 40);
    const body = (await refused.json()) as ErrorBody;
    assert.equal(refused.status, 507, JSON.stringify(body));
    assert.equal(body.error.code, "insufficient_storage");
    assert.match(body.error.message, /rag-embed\.sqlite.*SQLITE_FULL/);
    assert.ok(Number(refused.headers.get("retry-after")) >= 1);

    const status = await getJson<Status>(`${server.url}/v1/status`);
    assert.equal(status.status, 200);
    assert.equal(status.body.queue.available, false, "status says do not send");
    assert.equal(status.body.queue.storage.ok, false);
    assert.match(status.body.queue.storage.problem ?? "", /insufficient storage/);
    const seed = await getJson<{ queue_available: boolean }>(`${server.url}/test/status`);
    assert.equal(seed.body.queue_available, false);

    // The pipeline runs into the full disk too: its writes fail and are retried, nothing is lost.
    openGate();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const during = await getJson<{ counts: { stored: number; total: number } }>(
      `${server.url}/v1/jobs/${jobId}`,
    );
    assert.equal(during.status, 200, "reads work on a full disk");
    assert.equal(during.body.counts.total, 40);
    assert.ok(during.body.counts.stored < 40, "the full disk stopped the stores");

    db.pragma("max_page_count = 1073741823");
    const done = await waitForJobDone(server.url, jobId);
    assert.equal(
      done.counts.stored,
      40,
      `every acknowledged chunk is stored: ${JSON.stringify(done.counts)}`,
    );
    assert.equal(done.counts.dead, 0);
    assert.equal((await getJson<Status>(`${server.url}/v1/status`)).body.queue.available, true);
    assert.equal((await ingest("after", 5)).status, 202);
  });
});

/**
 * A read-only directory: chmod where the tests run unprivileged; as root (which chmod does not stop)
 * a read-only tmpfs mount, or the test is skipped when mounting is not allowed either.
 */
function readOnlyDir(): { dir: string; release: () => void } | string {
  const dir = join(tempDir("readonly"), "data");
  mkdirSync(dir);
  if (process.getuid?.() !== 0) {
    chmodSync(dir, 0o555);
    return { dir, release: () => chmodSync(dir, 0o755) };
  }
  const mount = spawnSync("mount", ["-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", dir], { encoding: "utf8" });
  if (mount.status !== 0)
    return `running as root without permission to mount a read-only tmpfs: ${mount.stderr}`;
  return { dir, release: () => spawnSync("umount", [dir]) };
}

describe("a read-only DATA_DIR", () => {
  const prepared = readOnlyDir();
  after(() => {
    if (typeof prepared !== "string") prepared.release();
  });

  /** `rag-embed serve` with this DATA_DIR: its exit code and what it printed. */
  async function serve(dataDir: string): Promise<{ code: number | null; stderr: string }> {
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "serve"], {
      cwd: REPO_ROOT,
      env: { ...process.env, DATA_DIR: dataDir, EMBEDDING_MODEL: testModelDir(), PORT: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    return { code, stderr };
  }

  it("fails at start with a message naming the directory (or the parent that stops its creation)", {
    skip: typeof prepared === "string" ? prepared : false,
  }, async () => {
    assert.ok(typeof prepared !== "string");
    const own = await serve(prepared.dir);
    assert.equal(own.code, 2, own.stderr);
    assert.ok(own.stderr.includes(`DATA_DIR ${prepared.dir} is not writable`), own.stderr);
    const sub = join(prepared.dir, "sub");
    const below = await serve(sub);
    assert.equal(below.code, 2, below.stderr);
    assert.ok(
      below.stderr.includes(`DATA_DIR ${sub} cannot be created: ${prepared.dir} is not writable`),
      below.stderr,
    );
  });
});
