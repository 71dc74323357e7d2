/**
 * The worker role as a real process (`serve --role worker`): its probes and metrics on WORKER_PORT,
 * and what SIGTERM does to the batches it holds. An API process (ROLE=api, no pipeline) and the
 * workers share one DATA_DIR: the SQLite queue and store, which several processes on one host may
 * share (WAL). No Redis: the proof needs only a queue shared between processes, seen over HTTP.
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { type JobBody, seedChunks, waitForJobDone } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/paths.js";
import { parsePrometheus, value } from "../helpers/prometheus.js";
import {
  getJson,
  postJson,
  type ServerProcess,
  startServerProcess,
  waitFor,
} from "../helpers/server-process.js";

interface StatusBody {
  queue: { pending_chunks: number; running_chunks: number };
}

function withKey(key: string): RequestInit {
  return { headers: { authorization: `Bearer ${key}` } };
}

async function scrape(url: string, key: string) {
  const response = await fetch(`${url}/metrics`, withKey(key));
  assert.equal(response.status, 200, `GET ${url}/metrics`);
  return parsePrometheus(await response.text());
}

function ragFamilies(types: Map<string, string>): string[] {
  return [...types.keys()].filter((name) => name.startsWith("rag_embed_")).sort();
}

describe("worker role: /health, /ready and /metrics on WORKER_PORT", () => {
  const key = "worker-test-key";
  const dataDir = tempDir("worker-http");
  const processes: ServerProcess[] = [];

  after(async () => {
    await Promise.all(processes.map((p) => p.stop("SIGKILL")));
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("serves probes and the shared queue's depth, with the API's metric names and key rule", async () => {
    const shared = { DATA_DIR: dataDir, API_KEYS: key };
    const api = await startServerProcess({ ...shared, ROLE: "api" });
    processes.push(api);
    // The API has no pipeline: what it accepts waits in the queue for a worker.
    const accepted = await fetch(`${api.url}/test/embed`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify(seedChunks(100, "w")),
    });
    assert.equal(accepted.status, 202);
    const { job_id: jobId } = (await accepted.json()) as { job_id: string };

    // A ceiling of 20 chunks/s keeps the 100 chunks queued for seconds after the worker is ready.
    const worker = await startServerProcess({
      ...shared,
      ROLE: "worker",
      WORKER_PORT: "0",
      EMBEDDING_MAX_RATE: "20",
    });
    processes.push(worker);
    assert.notEqual(new URL(worker.url).port, new URL(api.url).port, "the worker listens on its own port");

    assert.equal((await fetch(`${worker.url}/health`)).status, 200, "/health needs no key");
    assert.equal((await fetch(`${worker.url}/metrics`)).status, 401, "/metrics needs a key");
    await waitFor(async () => (await fetch(`${worker.url}/ready`, withKey(key))).status === 200, {
      what: "the worker to be ready",
    });

    const busy = await scrape(worker.url, key);
    assert.ok(value(busy.samples, "rag_embed_queue_pending_chunks") > 0, "queued chunks seen by the worker");
    assert.ok(value(busy.samples, "rag_embed_queue_pending_tokens") > 0, "queued tokens seen by the worker");
    const fromApi = await scrape(api.url, key);
    assert.deepEqual(ragFamilies(busy.types), ragFamilies(fromApi.types), "same metric families as the API");

    const job = await waitForJobDoneWithKey(api.url, jobId, key);
    assert.equal(job.counts.stored, 100);
    const done = await scrape(worker.url, key);
    assert.equal(value(done.samples, "rag_embed_queue_pending_chunks"), 0);
    assert.equal(value(done.samples, "rag_embed_queue_pending_tokens"), 0);
    assert.equal(value(done.samples, "rag_embed_chunks_stored_total", { collection: "test" }), 100);
    const apiDone = await scrape(api.url, key);
    assert.equal(value(apiDone.samples, "rag_embed_chunks_stored_total"), 0, "the API embedded nothing");
    assert.equal(value(apiDone.samples, "rag_embed_queue_pending_chunks"), 0, "both read the one queue");
  });
});

async function waitForJobDoneWithKey(url: string, jobId: string, key: string): Promise<JobBody> {
  return waitFor(
    async () => {
      const response = await fetch(`${url}/v1/jobs/${jobId}`, withKey(key));
      const body = (await response.json()) as JobBody;
      return response.status === 200 && body.state === "done" ? body : undefined;
    },
    { timeoutMs: 120_000, what: `job ${jobId} to finish` },
  );
}

describe("worker role: SIGTERM mid-batch finishes or releases what the worker holds", () => {
  const JOBS = 6;
  const PER_JOB = 100;
  const TOTAL = JOBS * PER_JOB;
  const dataDir = tempDir("worker-sigterm");
  const jobIds: string[] = [];
  let api: ServerProcess;
  const workers: ServerProcess[] = [];

  const status = async () => (await getJson<StatusBody>(`${api.url}/v1/status`)).body.queue;
  const startWorker = async (env: Record<string, string>) => {
    const worker = await startServerProcess({
      DATA_DIR: dataDir,
      ROLE: "worker",
      WORKER_PORT: "0",
      // Small reservations, two in flight: a busy worker always holds a batch.
      RESERVE_MAX_CHUNKS: "32",
      ...env,
    });
    workers.push(worker);
    return worker;
  };
  /** SIGTERM once `pending` has dropped below `below` (the worker is embedding), then await the exit. */
  const sigtermWhileBusy = async (worker: ServerProcess, below: number) => {
    await waitFor(async () => (await status()).pending_chunks < below, {
      intervalMs: 20,
      what: "the worker to store a first batch",
    });
    const pendingAtSignal = (await status()).pending_chunks;
    assert.ok(pendingAtSignal > 64, `work left when signalled (${pendingAtSignal})`);
    worker.child.kill("SIGTERM");
    await waitFor(async () => worker.logs.some((entry) => String(entry.msg).startsWith("shutting down")), {
      intervalMs: 5,
      what: "the worker to begin its shutdown",
    });
    const ready = await fetch(`${worker.url}/ready`).then(
      async (response) => ({
        status: response.status,
        body: (await response.json()) as { error?: { code: string } },
      }),
      () => null,
    );
    const code = await worker.stop();
    const stopped = worker.logs.find((entry) => entry.msg === "pipeline stopped");
    return { ready, code, stopped: stopped as { finished: number; released: number } | undefined };
  };

  before(async () => {
    api = await startServerProcess({ DATA_DIR: dataDir, ROLE: "api" });
    for (let i = 0; i < JOBS; i++) {
      const accepted = await postJson<{ job_id: string }>(
        `${api.url}/test/embed`,
        seedChunks(PER_JOB, `t${i}`),
      );
      assert.equal(accepted.status, 202);
      jobIds.push(accepted.body.job_id);
    }
  });

  after(async () => {
    await Promise.all([...workers, api].filter(Boolean).map((p) => p.stop("SIGKILL")));
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("with time to drain: says not ready, finishes its batches, exits 0 holding nothing", async () => {
    const worker = await startWorker({ SHUTDOWN_TIMEOUT_SECONDS: "60" });
    const { ready, code, stopped } = await sigtermWhileBusy(worker, TOTAL);
    assert.ok(ready, "the worker's listener stays open while it drains");
    assert.equal(ready.status, 503);
    assert.equal(ready.body.error?.code, "shutting_down");
    assert.equal(code, 0, "exit code 0");
    assert.ok(stopped, "the pipeline stopped before exit");
    assert.ok(stopped.finished >= 1, `was mid-batch and finished it (${JSON.stringify(stopped)})`);
    assert.equal(stopped.released, 0);
    // Nothing is left reserved by the process that is gone: finished batches were acknowledged.
    assert.equal((await status()).running_chunks, 0);
  });

  it("with no time to drain: releases its batches to the queue at once, exits 0", async () => {
    const pendingBefore = (await status()).pending_chunks;
    const worker = await startWorker({ SHUTDOWN_TIMEOUT_SECONDS: "0" });
    const { code, stopped } = await sigtermWhileBusy(worker, pendingBefore);
    assert.equal(code, 0, "exit code 0");
    assert.ok(stopped, "the pipeline stopped before exit");
    assert.ok(stopped.released >= 1, `was mid-batch and released it (${JSON.stringify(stopped)})`);
    // Released, not left to a lease expiry: every chunk is queued or stored right away.
    assert.equal((await status()).running_chunks, 0);
    for (const id of jobIds) {
      const { body } = await getJson<JobBody>(`${api.url}/v1/jobs/${id}`);
      assert.equal(body.counts.running, 0, `job ${id} holds no running chunk`);
      assert.equal(body.counts.failed + body.counts.dead, 0, `job ${id} has no failure`);
      assert.equal(body.counts.queued + body.counts.stored + body.counts.unchanged, PER_JOB);
      // A release is not a failure: no attempt is counted against the chunks handed back.
      const queued = await getJson<{ chunks: Array<{ attempts: number }> }>(
        `${api.url}/v1/jobs/${id}?state=queued&limit=1000`,
      );
      assert.ok(
        queued.body.chunks.every((chunk) => chunk.attempts === 0),
        `job ${id}: released chunks carry no failed attempt`,
      );
    }
  });

  it("a new worker completes every job: each chunk stored exactly once", async () => {
    await startWorker({});
    for (const id of jobIds) {
      const job = await waitForJobDone(api.url, id);
      assert.equal(job.counts.stored + job.counts.unchanged, PER_JOB, `job ${id} complete`);
      assert.equal(job.counts.failed + job.counts.dead, 0);
    }
    const search = await postJson<{ hits: Array<{ id: string }> }>(`${api.url}/v1/collections/test/search`, {
      query: "water",
      top_k: 10_000,
    });
    const ids = search.body.hits.map((hit) => hit.id);
    assert.equal(ids.length, TOTAL);
    assert.equal(new Set(ids).size, TOTAL, "no duplicates");
  });
});
