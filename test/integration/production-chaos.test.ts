/**
 * The production path under chaos, all real processes on 127.0.0.1: nginx → 2 API processes →
 * BullMQ on redis-server (AOF, appendfsync always) ← 2 workers → the Qdrant contract double
 * (honours update_filter). During an ingest with newer versions of some chunks re-sent:
 * - a worker is SIGSTOPped past its lease while another stores the newer versions of what it held,
 *   then SIGCONTed: its late writes of the older versions must lose;
 * - an API process is SIGKILLed mid-POST and the client retries with the same Idempotency-Key;
 * - a worker is SIGKILLed; redis-server is SIGKILLed and restarted on its AOF.
 * Then every accepted chunk is stored once with its newest version, no job is stuck, and there is
 * one job per idempotency key.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { JobSummary } from "../../src/client/types.js";
import { NginxTestServer } from "../helpers/nginx.js";
import { tempDir, testModelDir } from "../helpers/paths.js";
import { type QdrantContractServer, startQdrantContractServer } from "../helpers/qdrant-contract-server.js";
import { RedisTestServer } from "../helpers/redis-server.js";
import {
  freePort,
  getJson,
  type ServerProcess,
  startServerProcess,
  waitFor,
} from "../helpers/server-process.js";
import { startWorker, type WorkerProcess } from "../helpers/worker-process.js";

const COLLECTION = "chaos";
const CHUNKS = 2000;
const PER_REQUEST = 100;
const LEASE_SECONDS = 3;

interface Post {
  key: string;
  chunks: Array<{ id: string; text: string }>;
}

/** The processes a signal must reach to freeze a worker whole: itself and its embedder child. */
function processTree(pid: number): number[] {
  const children = readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .filter((name) => {
      try {
        return readFileSync(`/proc/${name}/stat`, "utf8").split(") ")[1]?.split(" ")[1] === String(pid);
      } catch {
        return false;
      }
    })
    .map(Number);
  return [pid, ...children.flatMap(processTree)];
}

function signalTree(pid: number, signal: NodeJS.Signals): void {
  for (const p of processTree(pid)) process.kill(p, signal);
}

describe("production chaos: nginx + 2 API + 2 workers + BullMQ/Redis + Qdrant", () => {
  let redis: RedisTestServer | undefined;
  let nginx: NginxTestServer | undefined;
  let qdrant: QdrantContractServer | undefined;
  const dataDir = tempDir("prod-chaos");
  const apiPorts: number[] = [];
  const apis: ServerProcess[] = [];
  const workers: WorkerProcess[] = [];
  let env: Record<string, string> = {};
  /** The newest text sent (and accepted) per chunk id. */
  const newest = new Map<string, string>();
  const keys = new Set<string>();

  const startApi = (index: number) =>
    startServerProcess({ ...env, ROLE: "api", PORT: String(apiPorts[index]) });

  before(async () => {
    redis = await RedisTestServer.start();
    qdrant = await startQdrantContractServer();
    env = {
      QUEUE_URL: redis.url,
      QUEUE_PREFIX: "chaos",
      VECTOR_STORE: "qdrant",
      QDRANT_URL: qdrant.url,
      DATA_DIR: dataDir,
      EMBEDDING_MODEL: testModelDir(),
      EMBEDDING_THREADS: "1",
      RESERVE_MAX_CHUNKS: "16",
      LEASE_SECONDS: String(LEASE_SECONDS),
      RETRY_BASE_MS: "200",
      RETRY_MAX_MS: "2000",
      MAX_ATTEMPTS: "20",
      SHUTDOWN_TIMEOUT_SECONDS: "2",
      OVERFLOW_POLICY: "truncate",
    };
    apiPorts.push(await freePort(), await freePort());
    // The first worker logs each reservation (debug), so the test can freeze it while it holds one.
    const started = await Promise.all([
      startApi(0),
      startApi(1),
      startWorker({ ...env, LOG_LEVEL: "debug" }),
      startWorker(env),
    ]);
    apis.push(started[0], started[1]);
    workers.push(started[2], started[3]);
    nginx = await NginxTestServer.start(apiPorts);
  });

  after(async () => {
    await Promise.allSettled([
      ...apis.map((a) => a.stop("SIGKILL")),
      ...workers.map((w) => w.stop("SIGKILL")),
    ]);
    await nginx?.stop();
    await qdrant?.close();
    await redis?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** POSTs through `base` until 202, as a careful client does: same body, same Idempotency-Key. */
  async function post(base: string, { key, chunks }: Post): Promise<string> {
    keys.add(key);
    const deadline = Date.now() + 120_000;
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await fetch(`${base}/v1/collections/${COLLECTION}/chunks`, {
          method: "POST",
          headers: { "content-type": "application/json", "idempotency-key": key },
          body: JSON.stringify({ chunks }),
          signal: AbortSignal.timeout(30_000),
        });
        const body = (await response.json()) as { job_id?: string };
        if (response.status === 202 && body.job_id) {
          for (const c of chunks) newest.set(c.id, c.text);
          return body.job_id;
        }
        if (![429, 500, 502, 503, 504].includes(response.status)) {
          throw new Error(`POST answered ${response.status}: ${JSON.stringify(body).slice(0, 300)}`);
        }
      } catch (error) {
        if (error instanceof Error && error.message.startsWith("POST answered")) throw error;
      }
      if (Date.now() > deadline) throw new Error(`POST ${key} not accepted in time`);
      await sleep(Math.min(1000, 50 * 2 ** Math.min(attempt, 5)));
    }
  }

  async function allJobs(): Promise<JobSummary[]> {
    const jobs: JobSummary[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
      const { body } = await getJson<{ jobs: JobSummary[]; next_cursor: string | null }>(
        `${nginx!.url}/v1/jobs?limit=200${query}`,
      );
      jobs.push(...body.jobs);
      cursor = body.next_cursor;
    } while (cursor);
    return jobs;
  }

  async function runningChunkIds(): Promise<string[]> {
    const ids: string[] = [];
    for (const job of await allJobs()) {
      if (job.state === "done") continue;
      const { body } = await getJson<{ chunks: Array<{ chunk_id: string }> }>(
        `${nginx!.url}/v1/jobs/${job.id}?state=running&limit=1000`,
      );
      ids.push(...body.chunks.map((c) => c.chunk_id));
    }
    return ids;
  }

  it("ends with every accepted chunk stored once, with its newest version", {
    timeout: 600_000,
  }, async () => {
    assert.ok(nginx && redis && qdrant);
    const v1: Post[] = [];
    for (let start = 0; start < CHUNKS; start += PER_REQUEST) {
      v1.push({
        key: `v1-${start}`,
        chunks: Array.from({ length: PER_REQUEST }, (_, i) => ({
          id: `c-${start + i}`,
          text: `version one of chunk ${start + i}: take ${i % 7} tablets after meals`,
        })),
      });
    }
    // The ingest runs in the background, two requests at a time, while the chaos happens.
    let next = 0;
    const ingest = Promise.all(
      [0, 1].map(async () => {
        while (next < v1.length) {
          const request = v1[next++]!;
          await post(nginx!.url, request);
        }
      }),
    );

    // 1. A worker frozen past its lease, right after it reserved a batch (so it is embedding it),
    // while the other worker stores newer versions of what it held.
    const frozen = workers[0]!;
    const seen = frozen.logs.length;
    await waitFor(
      async () => (frozen.logs.slice(seen).some((e) => e.msg === "batch reserved") ? true : undefined),
      {
        what: "the first worker to reserve a batch",
        intervalMs: 1,
      },
    );
    signalTree(frozen.child.pid!, "SIGSTOP");
    await sleep(300);
    const held = await runningChunkIds();
    assert.ok(held.length > 0);
    const newer: Post = {
      key: "v2-held",
      chunks: held.map((id) => ({ id, text: `version two of ${id}: the newest text` })),
    };
    const newerJob = await post(nginx.url, newer);
    await waitFor(
      async () => {
        const { body } = await getJson<JobSummary>(`${nginx!.url}/v1/jobs/${newerJob}`);
        return body.state === "done" ? true : undefined;
      },
      { what: "the newer versions stored by the other worker", timeoutMs: 120_000 },
    );
    const logsBefore = frozen.logs.length;
    signalTree(frozen.child.pid!, "SIGCONT");

    // 2. An API process killed mid-POST; the client retries through nginx with the same key.
    const midPost: Post = {
      key: "killed-mid-post",
      chunks: Array.from({ length: PER_REQUEST }, (_, i) => ({
        id: `k-${i}`,
        text: `sent while its API process died ${i}`,
      })),
    };
    keys.add(midPost.key);
    const inFlight = fetch(`http://127.0.0.1:${apiPorts[0]}/v1/collections/${COLLECTION}/chunks`, {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": midPost.key },
      body: JSON.stringify({ chunks: midPost.chunks }),
    }).catch(() => null);
    await sleep(5);
    await apis[0]!.stop("SIGKILL");
    await inFlight;
    apis[0] = await startApi(0);
    await post(nginx.url, midPost);
    await post(nginx.url, midPost); // a second retry after success: still one job

    // 3. A worker SIGKILLed and replaced; 4. Redis SIGKILLed and restarted on its AOF.
    await workers[1]!.stop("SIGKILL");
    workers[1] = await startWorker(env);
    await redis.restart("SIGKILL");

    await ingest;
    // More newer versions, of chunks whose first version was accepted long ago.
    const late: Post = {
      key: "v2-late",
      chunks: Array.from({ length: 150 }, (_, i) => ({
        id: `c-${i * 13}`,
        text: `late version of c-${i * 13}`,
      })),
    };
    await post(nginx.url, late);

    // Everything finishes: no job stuck.
    const jobs = await waitFor(
      async () => {
        const list = await allJobs().catch(() => null);
        return list && list.length === keys.size && list.every((j) => j.state === "done") ? list : undefined;
      },
      { what: "every job done", timeoutMs: 300_000, intervalMs: 500 },
    );
    assert.equal(jobs.length, keys.size, "one job per idempotency key");
    for (const job of jobs) assert.equal(job.counts.dead, 0, `job ${job.id} has dead letters`);

    // Every accepted chunk stored once, with its newest version.
    const collection = qdrant.collection(COLLECTION);
    assert.ok(collection);
    const stored = new Map<string, string>();
    for (const point of collection.points.values()) {
      const chunkId = String(point.payload.chunk_id);
      assert.ok(!stored.has(chunkId), `${chunkId} stored twice`);
      stored.set(chunkId, String(point.payload.text));
    }
    assert.equal(stored.size, newest.size, "one point per accepted chunk id");
    const wrong = [...newest].filter(([id, text]) => stored.get(id) !== text);
    assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} chunks do not hold their newest version`);

    // The frozen worker did come back with its stale results, and they lost.
    const resumed = frozen.logs.slice(logsBefore);
    const superseded = resumed
      .filter((entry) => entry.msg === "batch committed")
      .reduce((sum, entry) => sum + Number(entry.superseded ?? 0), 0);
    assert.ok(
      superseded > 0,
      `the stalled worker's late writes of older versions were refused: ${JSON.stringify(resumed.slice(0, 12))}`,
    );
    const invalid = qdrant.requests.filter((r) => !r.valid);
    assert.deepEqual(invalid.slice(0, 3), [], "every Qdrant request matched the spec");
  });
});
