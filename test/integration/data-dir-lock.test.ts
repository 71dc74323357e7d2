/**
 * One server per DATA_DIR in the embedded mode: a second `rag-embed serve` on the same directory
 * refuses to start and names the first; a SIGKILLed server's lock is taken over at once. Processes
 * that share the SQLite file on purpose (ROLE=api, ROLE=worker) start beside it and say so.
 */
import assert from "node:assert/strict";
import { hostname } from "node:os";
import { after, describe, it } from "node:test";
import { seedChunks, waitForJobDone } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/paths.js";
import { postJson, type ServerProcess, startServerProcess } from "../helpers/server-process.js";

describe("one server per DATA_DIR", () => {
  const processes: ServerProcess[] = [];
  const start = async (env: Record<string, string>) => {
    const server = await startServerProcess(env);
    processes.push(server);
    return server;
  };
  after(async () => {
    await Promise.all(processes.map((p) => p.stop("SIGKILL")));
  });

  it("a second embedded server refuses naming the first; after a SIGKILL the next one takes over at once", async () => {
    const dataDir = tempDir("lock-e2e");
    const first = await start({ DATA_DIR: dataDir });
    await assert.rejects(startServerProcess({ DATA_DIR: dataDir }), (error: Error) => {
      assert.match(error.message, /exited \(\d+\) before logging "listening"/);
      assert.ok(
        error.message.includes(
          `is in use by another rag-embed server: pid ${first.child.pid} on host ${hostname()}`,
        ),
        error.message,
      );
      return true;
    });

    await first.stop("SIGKILL");
    const next = await start({ DATA_DIR: dataDir });
    const tookOver = next.logs.find((line) => String(line.msg).startsWith("took over DATA_DIR"));
    assert.equal((tookOver?.previous as { pid?: number } | undefined)?.pid, first.child.pid);
    const accepted = await postJson<{ job_id: string }>(`${next.url}/test/embed`, seedChunks(5, "lock"));
    assert.equal(accepted.status, 202);
    await waitForJobDone(next.url, accepted.body.job_id);
  });

  it("api and worker processes share one DATA_DIR on purpose, and say so at start", async () => {
    const dataDir = tempDir("lock-shared");
    const api = await start({ DATA_DIR: dataDir, ROLE: "api" });
    const worker = await start({ DATA_DIR: dataDir, ROLE: "worker", WORKER_PORT: "0" });
    for (const server of [api, worker]) {
      assert.ok(
        server.logs.some((line) => String(line.msg).startsWith("DATA_DIR is shared on purpose")),
        "says it shares DATA_DIR",
      );
    }
    const accepted = await postJson<{ job_id: string }>(`${api.url}/test/embed`, seedChunks(5, "shared"));
    assert.equal(accepted.status, 202);
    const job = await waitForJobDone(api.url, accepted.body.job_id);
    assert.equal(job.counts.stored, 5, "the worker stored what the API accepted");
  });
});
