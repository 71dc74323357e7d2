/**
 * Distributed mode for real, all on 127.0.0.1: redis-server with AOF (`appendfsync always`),
 * two API processes (`serve --role api`) behind a real nginx, two worker processes
 * (`rag-embed worker`), one shared DATA_DIR (SQLite store, WAL; allowed because every process
 * runs on this host). Needs redis-server and nginx installed (CI's .ci/run installs both).
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { JobBody, SeedChunkFixture } from "../helpers/fixtures.js";
import { NginxTestServer } from "../helpers/nginx.js";
import { tempDir, testModelDir } from "../helpers/paths.js";
import { RedisTestServer } from "../helpers/redis-server.js";
import {
  freePort,
  getJson,
  type ServerProcess,
  startServerProcess,
  waitFor,
} from "../helpers/server-process.js";
import { startWorker, type WorkerProcess } from "../helpers/worker-process.js";

const CHUNKS = 5000;
const PER_REQUEST = 100;
const AOF_CHUNKS = 2000;

function chunk(i: number): SeedChunkFixture {
  return {
    chunk_id: `dist-${i}`,
    item_sequence: String(Math.floor(i / 10)),
    name: `Item ${i % 89}`,
    contents: `dose ${i} mg ${"twice daily ".repeat(i % 5)}`,
    meta: i % 2 ? null : { n: i },
  };
}

const RETRYABLE = new Set([429, 500, 502, 503, 504]);
/** What the client saw besides 202, for the test's diagnostics ("refused", "429", ...). */
const retried = new Map<string, number>();
const noteRetry = (what: string) => retried.set(what, (retried.get(what) ?? 0) + 1);

/**
 * Posts until the request is accepted (202), as a real client does: connection errors and
 * 429/5xx are retried with the same body (same chunk ids), anything else fails the test.
 */
async function postUntilAccepted(url: string, body: unknown, deadline: number): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await response.text();
      if (response.status === 202) return (JSON.parse(text) as { job_id: string }).job_id;
      if (!RETRYABLE.has(response.status)) {
        throw new Error(`POST ${url} answered ${response.status}: ${text.slice(0, 500)}`);
      }
      noteRetry(String(response.status));
    } catch (error) {
      if (error instanceof Error && error.message.startsWith("POST ")) throw error;
      noteRetry("connection error");
      // refused / reset / timed out: not accepted, send again
    }
    if (Date.now() > deadline) throw new Error(`POST ${url} not accepted before the deadline`);
    await sleep(Math.min(500, 25 * 2 ** Math.min(attempt, 5)));
  }
}

async function jobDone(base: string, jobId: string, timeoutMs: number): Promise<JobBody> {
  return waitFor(
    async () => {
      const response = await getJson<JobBody>(`${base}/v1/jobs/${jobId}`).catch(() => null);
      return response?.status === 200 && response.body.state === "done" ? response.body : undefined;
    },
    { timeoutMs, intervalMs: 200, what: `job ${jobId} to finish` },
  );
}

async function searchIds(base: string, collection: string, query: string): Promise<string[]> {
  const response = await fetch(`${base}/v1/collections/${collection}/search`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query, top_k: 10_000 }),
  });
  const body = (await response.json()) as { hits?: Array<{ id: string }> };
  assert.equal(response.status, 200, `search ${collection}: ${JSON.stringify(body).slice(0, 500)}`);
  return (body.hits ?? []).map((hit) => hit.id);
}

async function pendingChunks(base: string): Promise<number | null> {
  const response = await getJson<{ current_task_queue_size: number }>(`${base}/test/status`).catch(
    () => null,
  );
  return response?.status === 200 ? response.body.current_task_queue_size : null;
}

describe("distributed: Redis queue, 2 API processes behind nginx, 2 workers, one host", () => {
  let redis: RedisTestServer | undefined;
  let nginx: NginxTestServer | undefined;
  let dataDir = "";
  const apiPorts: number[] = [];
  const apis: ServerProcess[] = [];
  const workers: WorkerProcess[] = [];
  let env: Record<string, string> = {};

  const startApi = (index: number) =>
    startServerProcess({ ...env, ROLE: "api", PORT: String(apiPorts[index]) });
  const apiUrl = (index: number) => `http://127.0.0.1:${apiPorts[index]}`;

  before(async () => {
    redis = await RedisTestServer.start();
    dataDir = tempDir("distributed");
    env = {
      QUEUE_URL: redis.url,
      QUEUE_PREFIX: "dist-test:",
      DATA_DIR: dataDir,
      VECTOR_STORE: "sqlite",
      EMBEDDING_MODEL: testModelDir(),
      EMBEDDING_THREADS: "1",
      RESERVE_MAX_CHUNKS: "64",
      // A SIGKILLed worker's lease comes back to the queue after this.
      LEASE_SECONDS: "4",
      RETRY_BASE_MS: "200",
      RETRY_MAX_MS: "2000",
      MAX_ATTEMPTS: "10",
      MAX_QUEUE_SIZE: "100000",
      SHUTDOWN_TIMEOUT_SECONDS: "2",
      LOG_LEVEL: "info",
    };
    apiPorts.push(await freePort(), await freePort());
    const started = await Promise.all([startApi(0), startApi(1), startWorker(env), startWorker(env)]);
    apis.push(started[0], started[1]);
    workers.push(started[2], started[3]);
    nginx = await NginxTestServer.start(apiPorts);
  });

  after(async () => {
    await Promise.allSettled([
      ...apis.map((api) => api.stop("SIGKILL")),
      ...workers.map((worker) => worker.stop("SIGKILL")),
    ]);
    await nginx?.stop();
    await redis?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it("5,000 chunks through nginx with a worker and an API process SIGKILLed and restarted: stored = accepted", {
    timeout: 120_000,
  }, async (t) => {
    retried.clear();
    assert.ok(nginx);
    const base = nginx.url;
    const deadline = Date.now() + 90_000;
    const jobIds: string[] = [];
    const accepted = new Set<string>();

    const sender = (async () => {
      for (let start = 0; start < CHUNKS; start += PER_REQUEST) {
        const body = Array.from({ length: PER_REQUEST }, (_, k) => chunk(start + k));
        jobIds.push(await postUntilAccepted(`${base}/test/embed`, body, deadline));
        for (const c of body) accepted.add(c.chunk_id);
        // Paced a little, so the kills below land while requests are still arriving.
        await sleep(15);
      }
    })();

    // Mid-run: kill one worker and one API process with work pending, then restart both.
    await waitFor(async () => accepted.size >= 1500 || undefined, {
      timeoutMs: 60_000,
      intervalMs: 10,
      what: "1,500 accepted chunks",
    });
    const pendingAtKill = await pendingChunks(apiUrl(1));
    // An API process embeds nothing, yet reports the workers' drain rate (published through Redis).
    const apiThroughput = await waitFor(
      async () => {
        const status = await getJson<{ throughput: { chunks_per_second: number } }>(`${apiUrl(1)}/v1/status`);
        return status.body.throughput.chunks_per_second > 0
          ? status.body.throughput.chunks_per_second
          : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 100, what: "the API instance to report the workers' throughput" },
    );
    const [worker0, api0] = [workers[0], apis[0]];
    assert.ok(worker0 && api0);
    await Promise.all([worker0.stop("SIGKILL"), api0.stop("SIGKILL")]);
    const sentWhileDown = accepted.size;
    await sleep(500);
    const [newApi, newWorker] = await Promise.all([startApi(0), startWorker(env)]);
    apis[0] = newApi;
    workers[0] = newWorker;
    await sender;

    t.diagnostic(
      `pending at the kill: ${pendingAtKill}; API-reported throughput ${apiThroughput} chunks/s; retries: ${JSON.stringify([...retried])}`,
    );
    assert.ok(pendingAtKill !== null && pendingAtKill > 0, `work was pending at the kill (${pendingAtKill})`);
    assert.ok(sentWhileDown < CHUNKS, "the kill happened while chunks were still being sent");
    assert.equal(accepted.size, CHUNKS);

    for (const jobId of jobIds) {
      const job = await jobDone(base, jobId, Math.max(5_000, deadline - Date.now()));
      assert.equal(job.counts.dead, 0, `job ${jobId}: ${JSON.stringify(job.failures.slice(0, 3))}`);
      assert.equal(job.counts.stored + job.counts.unchanged, job.counts.total, `job ${jobId} complete`);
    }

    const ids = await searchIds(base, "test", "dose");
    assert.equal(new Set(ids).size, ids.length, "no duplicate ids");
    assert.equal(ids.length, accepted.size, "stored points = accepted chunks");
    assert.deepEqual(new Set(ids), accepted);

    // Global status: both API instances read the same Redis counters.
    const [a, b] = await Promise.all([
      getJson(`${apiUrl(0)}/test/status`),
      getJson(`${apiUrl(1)}/test/status`),
    ]);
    assert.equal(a.status, 200);
    assert.deepEqual(a.body, b.body, "/test/status agrees across the API instances");
    assert.equal(a.body.current_task_queue_size, 0);
    const [va, vb] = await Promise.all([
      getJson<{ queue: unknown; dead_letters: unknown }>(`${apiUrl(0)}/v1/status`),
      getJson<{ queue: unknown; dead_letters: unknown }>(`${apiUrl(1)}/v1/status`),
    ]);
    assert.deepEqual([va.body.queue, va.body.dead_letters], [vb.body.queue, vb.body.dead_letters]);
  });

  it("redis-server SIGKILLed and restarted on its AOF mid-run: every accepted chunk is stored", {
    timeout: 90_000,
  }, async (t) => {
    retried.clear();
    assert.ok(nginx && redis);
    const base = nginx.url;
    const deadline = Date.now() + 75_000;
    const jobs: Array<{ jobId: string; ids: string[] }> = [];
    const accepted = new Set<string>();

    const sender = (async () => {
      for (let start = 0; start < AOF_CHUNKS; start += PER_REQUEST) {
        const chunks = Array.from({ length: PER_REQUEST }, (_, k) => ({
          id: `aof-${start + k}`,
          text: `aof chunk ${start + k} ${"long text ".repeat((start + k) % 6)}`,
        }));
        const jobId = await postUntilAccepted(`${base}/v1/collections/aof/chunks`, { chunks }, deadline);
        jobs.push({ jobId, ids: chunks.map((c) => c.id) });
        for (const c of chunks) accepted.add(c.id);
        await sleep(15);
      }
    })();

    await waitFor(async () => accepted.size >= 600 || undefined, {
      timeoutMs: 30_000,
      intervalMs: 10,
      what: "600 accepted chunks",
    });
    const acceptedBeforeCrash = accepted.size;
    const pendingAtCrash = await pendingChunks(apiUrl(0));
    await redis.kill("SIGKILL");
    await sleep(1500);
    await redis.restart();
    await sender;
    t.diagnostic(`pending at the crash: ${pendingAtCrash}; retries: ${JSON.stringify([...retried])}`);
    assert.ok(acceptedBeforeCrash < AOF_CHUNKS, "Redis died while chunks were still being sent");
    assert.ok(pendingAtCrash !== null && pendingAtCrash > 0, "accepted chunks were waiting when Redis died");
    assert.equal(accepted.size, AOF_CHUNKS);

    for (const { jobId, ids } of jobs) {
      const job = await jobDone(base, jobId, Math.max(5_000, deadline - Date.now()));
      assert.equal(job.counts.total, ids.length, `job ${jobId} kept all its chunks`);
      assert.equal(job.counts.dead, 0, `job ${jobId}: ${JSON.stringify(job.failures.slice(0, 3))}`);
      assert.equal(job.counts.stored + job.counts.unchanged, job.counts.total, `job ${jobId} complete`);
    }
    const ids = await searchIds(base, "aof", "aof chunk");
    assert.equal(new Set(ids).size, ids.length, "no duplicate ids");
    assert.deepEqual(new Set(ids), accepted, "every accepted chunk is stored");

    const [a, b] = await Promise.all([
      getJson(`${apiUrl(0)}/test/status`),
      getJson(`${apiUrl(1)}/test/status`),
    ]);
    assert.deepEqual(a.body, b.body, "/test/status agrees across the API instances");
  });
});
