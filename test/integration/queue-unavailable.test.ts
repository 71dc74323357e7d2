import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { HttpServer } from "../../src/main.js";
import { waitForJobDone } from "../helpers/fixtures.js";
import { startInProcess } from "../helpers/in-process-server.js";
import { RedisTestServer } from "../helpers/redis-server.js";
import { waitFor } from "../helpers/server-process.js";

interface Answer {
  status: number;
  retryAfter: string | null;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
  ms: number;
}

/** One request, timed; the client gives up at 20 s, so a hang shows as a failure, not a stuck test. */
async function call(url: string, method = "GET", body?: unknown): Promise<Answer> {
  const started = Date.now();
  const response = await fetch(url, {
    method,
    signal: AbortSignal.timeout(20_000),
    ...(body === undefined
      ? {}
      : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
  });
  return {
    status: response.status,
    retryAfter: response.headers.get("retry-after"),
    body: (await response.json()) as Answer["body"],
    ms: Date.now() - started,
  };
}

function assertQueueUnavailable(answer: Answer, what: string): void {
  assert.equal(answer.status, 503, `${what}: ${JSON.stringify(answer.body)}`);
  assert.equal(answer.body.error?.code, "queue_unavailable", what);
  assert.ok(Number(answer.retryAfter) >= 1, `${what}: Retry-After ${answer.retryAfter}`);
  // BACKEND_TIMEOUT_MS is 1.5 s: bounded, never the hang of a request waiting for Redis.
  assert.ok(answer.ms < 10_000, `${what} answered in ${answer.ms} ms`);
}

const chunks = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i}`, text: `${prefix} text number ${i}` }));

describe("Redis down or frozen: fast 503 queue_unavailable on ingest and job routes; what was accepted stays", () => {
  let redis: RedisTestServer;
  let server: HttpServer;

  before(async () => {
    redis = await RedisTestServer.start();
    server = await startInProcess({
      QUEUE_URL: redis.url,
      VECTOR_STORE: "sqlite",
      BACKEND_TIMEOUT_MS: "1500",
      READY_FAILURE_SECONDS: "0",
      RETRY_BASE_MS: "100",
      RETRY_MAX_MS: "500",
      MAX_ATTEMPTS: "1000",
    });
  });
  after(async () => {
    redis.resume();
    await server.shutdown(2000);
    await redis.stop();
  });

  it("answers every queue route with 503 while Redis is down or frozen, then takes work again", async () => {
    const ingest = `${server.url}/v1/collections/docs/chunks`;
    const first = await call(ingest, "POST", { chunks: chunks("before", 20) });
    assert.equal(first.status, 202);
    const jobId = first.body.job_id as string;

    await redis.kill("SIGKILL");
    const routes: Array<[string, string, unknown?]> = [
      [ingest, "POST", { chunks: chunks("down", 5) }],
      [
        `${server.url}/test/embed`,
        "POST",
        [{ chunk_id: "s", item_sequence: 1, name: "n", contents: "c", meta: null }],
      ],
      [`${server.url}/v1/jobs/${jobId}`, "GET"],
      [`${server.url}/v1/jobs`, "GET"],
      [`${server.url}/v1/jobs/${jobId}`, "DELETE"],
      [`${server.url}/v1/collections/docs/documents`, "GET"],
      [`${server.url}/v1/collections/docs/documents/d1`, "PUT", { chunks: chunks("doc", 2) }],
      [`${server.url}/v1/collections/docs/documents/d1`, "DELETE"],
      [`${server.url}/v1/status`, "GET"],
      [`${server.url}/test/status`, "GET"],
      [`${server.url}/v1/dead-letters`, "GET"],
      [`${server.url}/v1/dead-letters/replay`, "POST", { all: true }],
      [`${server.url}/metrics`, "GET"],
      [`${server.url}/ready`, "GET"],
    ];
    for (const [url, method, body] of routes) {
      assertQueueUnavailable(await call(url, method, body), `${method} ${url} (Redis down)`);
    }

    // Redis back, then frozen (SIGSTOP): connections are accepted, nothing is answered.
    await redis.restart();
    await waitFor(async () => (await call(`${server.url}/v1/jobs/${jobId}`)).status === 200, {
      what: "the API to reconnect to Redis",
      timeoutMs: 30_000,
    });
    redis.pause();
    const frozen = await call(ingest, "POST", { chunks: chunks("frozen", 5) });
    assertQueueUnavailable(frozen, "POST while Redis is frozen");
    assert.match(frozen.body.error?.message ?? "", /did not answer/);
    assertQueueUnavailable(await call(`${server.url}/v1/jobs/${jobId}`), "GET job while Redis is frozen");
    redis.resume();

    const again = await waitFor(
      async () => {
        const answer = await call(ingest, "POST", { chunks: chunks("after", 5) });
        return answer.status === 202 ? answer : undefined;
      },
      { what: "ingest to be accepted again", timeoutMs: 30_000 },
    );
    // Everything acknowledged before the outage is still there and gets stored.
    const done = await waitForJobDone(server.url, jobId);
    assert.equal(done.counts.total, 20);
    assert.equal(done.counts.stored, 20, JSON.stringify(done.counts));
    assert.equal((await waitForJobDone(server.url, again.body.job_id as string)).counts.stored, 5);
    assert.equal((await call(`${server.url}/ready`)).status, 200);
  });
});
