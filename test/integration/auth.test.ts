import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { after, before, describe, it } from "node:test";
import { loadSettings } from "../../src/config/settings.js";
import { type HttpServer, startHttpServer } from "../../src/main.js";
import { createLogger } from "../../src/observability/logger.js";
import { seedChunks } from "../helpers/fixtures.js";
import { tempDir, testModelDir } from "../helpers/paths.js";

interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

const KEY_A = "test-key-alpha-0123456789";
const KEY_B = "test-key-bravo-9876543210";

/** Settings contract: API_KEYS (comma-separated) and API_KEY_RATE_LIMIT (requests/min per key). */
async function start(name: string, extra: Record<string, string>): Promise<HttpServer> {
  const settings = loadSettings({
    DATA_DIR: tempDir(name),
    EMBEDDING_MODEL: testModelDir(),
    PORT: "0",
    MAX_QUEUE_SIZE: "100000",
    LOG_LEVEL: "silent",
    EMBEDDING_MAX_RATE: "0.001",
    ...extra,
  });
  return startHttpServer(settings, createLogger(settings.logLevel));
}

interface Route {
  method: string;
  path: string;
  body?: unknown;
}

const ROUTES: Route[] = [
  { method: "POST", path: "/test/embed", body: seedChunks(2, "auth") },
  { method: "GET", path: "/test/status" },
  { method: "GET", path: "/model-info" },
  { method: "POST", path: "/v1/collections/c/chunks", body: { chunks: [{ id: "a", text: "hello" }] } },
  { method: "GET", path: "/v1/jobs/x" },
  { method: "GET", path: "/v1/status" },
  { method: "POST", path: "/v1/collections/c/search", body: { query: "hello" } },
  { method: "DELETE", path: "/v1/collections/c/documents/d" },
  { method: "GET", path: "/ready" },
  { method: "GET", path: "/v1/dead-letters" },
  { method: "POST", path: "/v1/dead-letters/replay", body: {} },
  { method: "DELETE", path: "/v1/dead-letters" },
];

async function call(base: string, route: Route, authorization?: string) {
  const headers: Record<string, string> = {};
  if (authorization !== undefined) headers.authorization = authorization;
  if (route.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${base}${route.path}`, {
    method: route.method,
    headers,
    body: route.body === undefined ? undefined : JSON.stringify(route.body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text };
}

async function pending(base: string): Promise<number> {
  const response = await fetch(`${base}/test/status`, { headers: { authorization: `Bearer ${KEY_A}` } });
  assert.equal(response.status, 200);
  return ((await response.json()) as { current_task_queue_size: number }).current_task_queue_size;
}

describe("API keys: every route but /health needs a valid bearer key", () => {
  let server: HttpServer;
  before(async () => {
    server = await start("auth", { API_KEYS: `${KEY_A}, ${KEY_B}` });
  });
  after(async () => {
    await server.shutdown(1000);
  });

  const refusals: Array<{ name: string; header: string | undefined }> = [
    { name: "no key", header: undefined },
    { name: "a wrong key", header: "Bearer not-a-key" },
    { name: "a key that is a prefix of a valid one", header: `Bearer ${KEY_A.slice(0, -1)}` },
    { name: "Basic scheme", header: "Basic x" },
    { name: "Basic scheme with a valid key", header: `Basic ${KEY_A}` },
    { name: "Bearer without a token", header: "Bearer" },
    { name: "the bare key without a scheme", header: KEY_A },
  ];

  for (const refusal of refusals) {
    it(`${refusal.name} → 401 unauthorized on every route, nothing enqueued`, async () => {
      const before = await pending(server.url);
      for (const route of ROUTES) {
        const response = await call(server.url, route, refusal.header);
        const what = `${route.method} ${route.path}: ${response.status} ${response.text}`;
        assert.equal(response.status, 401, what);
        const body = JSON.parse(response.text) as ErrorBody;
        assert.equal(body.error.code, "unauthorized", what);
        assert.ok(body.error.message.length > 0);
        assert.match(response.headers.get("www-authenticate") ?? "", /^Bearer\b/, what);
        assert.ok(!response.text.includes(KEY_A) && !response.text.includes(KEY_B), "no key echoed");
      }
      assert.equal(await pending(server.url), before, "refused POSTs enqueue nothing");
    });
  }

  for (const key of [KEY_A, KEY_B]) {
    it(`a valid key (${key === KEY_A ? "first" : "second"}) passes on every route`, async () => {
      for (const route of ROUTES) {
        for (const header of [`Bearer ${key}`, `bearer ${key}`]) {
          const response = await call(server.url, route, header);
          assert.notEqual(response.status, 401, `${route.method} ${route.path}: ${response.text}`);
        }
      }
    });
  }

  it("a valid key is accepted and its chunks are enqueued", async () => {
    const before = await pending(server.url);
    const response = await call(
      server.url,
      { method: "POST", path: "/test/embed", body: seedChunks(3, "auth-ok") },
      `Bearer ${KEY_B}`,
    );
    assert.equal(response.status, 202, response.text);
    assert.ok((await pending(server.url)) >= before + 2, "accepted chunks are queued");
  });

  it("GET /health needs no key", async () => {
    const response = await fetch(`${server.url}/health`);
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { status: "ok" });
  });

  it("unknown routes are 401 before they are 404", async () => {
    const anonymous = await fetch(`${server.url}/v2/whatever`);
    assert.equal(anonymous.status, 401);
    const keyed = await fetch(`${server.url}/v2/whatever`, { headers: { authorization: `Bearer ${KEY_A}` } });
    assert.equal(keyed.status, 404);
  });

  it("an unauthenticated 100 MB body is refused before it is read", async () => {
    const declared = 100 * 1024 * 1024;
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${server.url}/test/embed`, {
        method: "POST",
        headers: { "content-type": "application/json", "content-length": String(declared) },
      });
      req.on("response", (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      // Once the answer has come, the server may close the socket under the unsent body.
      req.on("error", (error) => reject(error));
      // Only the first 64 KiB are ever sent: the answer must not wait for the rest.
      req.write(Buffer.alloc(64 * 1024, 0x20));
    });
    assert.equal(status, 401);
  });
});

describe("API keys: per-key rate limit", () => {
  let server: HttpServer;
  before(async () => {
    server = await start("auth-rate", { API_KEYS: `${KEY_A},${KEY_B}`, API_KEY_RATE_LIMIT: "5" });
  });
  after(async () => {
    await server.shutdown(1000);
  });

  it("the 6th request of a key in a minute is 429 rate_limited with Retry-After; another key passes", async () => {
    const status: Route = { method: "GET", path: "/test/status" };
    for (let i = 1; i <= 5; i++) {
      const response = await call(server.url, status, `Bearer ${KEY_A}`);
      assert.equal(response.status, 200, `request ${i}: ${response.text}`);
    }
    const limited = await call(server.url, status, `Bearer ${KEY_A}`);
    assert.equal(limited.status, 429, limited.text);
    const body = JSON.parse(limited.text) as ErrorBody;
    assert.equal(body.error.code, "rate_limited");
    assert.ok(body.error.message.length > 0);
    assert.ok(!limited.text.includes(KEY_A), "the key is not echoed");
    const retryAfter = Number(limited.headers.get("retry-after"));
    assert.ok(
      Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60,
      `Retry-After ${retryAfter}`,
    );

    // Limited POSTs enqueue nothing either.
    const embed = await call(
      server.url,
      { method: "POST", path: "/test/embed", body: seedChunks(2, "limited") },
      `Bearer ${KEY_A}`,
    );
    assert.equal(embed.status, 429);

    const other = await call(server.url, status, `Bearer ${KEY_B}`);
    assert.equal(other.status, 200, other.text);
    const queued = JSON.parse(other.text) as { current_task_queue_size: number };
    assert.equal(queued.current_task_queue_size, 0, "the rate-limited POST enqueued nothing");

    // Anonymous requests are refused as 401, not counted against anyone.
    const anonymous = await call(server.url, status);
    assert.equal(anonymous.status, 401);
    const health = await fetch(`${server.url}/health`);
    assert.equal(health.status, 200);
  });
});
