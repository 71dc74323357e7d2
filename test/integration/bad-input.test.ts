import assert from "node:assert/strict";
import { once } from "node:events";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import { loadSettings } from "../../src/config/settings.js";
import { type HttpServer, startHttpServer } from "../../src/main.js";
import { createLogger } from "../../src/observability/logger.js";
import { seedChunks } from "../helpers/fixtures.js";
import { tempDir, testModelDir } from "../helpers/paths.js";

/** Any method, even those fetch refuses (QUERY, TRACE). */
function rawRequest(
  url: string,
  method: string,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method }, (res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => {
        body += chunk.toString();
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

describe("bad input gets a clear 4xx with a stable code and changes nothing", () => {
  let server: HttpServer;

  before(async () => {
    const settings = loadSettings({
      DATA_DIR: tempDir("bad-input"),
      EMBEDDING_MODEL: testModelDir(),
      PORT: "0",
      MAX_QUEUE_SIZE: "100",
      BODY_LIMIT_BYTES: "65536",
      BODY_TIMEOUT_SECONDS: "1",
      LOG_LEVEL: "silent",
      // Keep accepted chunks queued so the queue-size assertions see exactly what was admitted.
      EMBEDDING_MAX_RATE: "0.001",
    });
    server = await startHttpServer(settings, createLogger(settings.logLevel));
  });
  after(async () => {
    await server.shutdown(1000);
  });

  async function pending(): Promise<number> {
    const response = await fetch(`${server.url}/test/status`);
    return ((await response.json()) as { current_task_queue_size: number }).current_task_queue_size;
  }

  async function send(path: string, body: string, contentType = "application/json") {
    const response = await fetch(`${server.url}${path}`, {
      method: "POST",
      headers: { "content-type": contentType },
      body,
    });
    return { status: response.status, headers: response.headers, body: (await response.json()) as ErrorBody };
  }

  const valid = seedChunks(3);
  const cases: Array<{ name: string; path: string; body: string; status: number; code: string }> = [
    {
      name: "malformed JSON",
      path: "/test/embed",
      body: '[{"chunk_id": "a",',
      status: 400,
      code: "invalid_json",
    },
    { name: "empty body", path: "/test/embed", body: "", status: 400, code: "invalid_json" },
    {
      name: "missing field",
      path: "/test/embed",
      body: JSON.stringify([{ chunk_id: "a", item_sequence: "1", name: "n", meta: null }]),
      status: 400,
      code: "invalid_request",
    },
    {
      name: "wrong type",
      path: "/test/embed",
      body: JSON.stringify([{ ...valid[0], contents: 42 }]),
      status: 400,
      code: "invalid_request",
    },
    {
      name: "meta of the wrong type",
      path: "/test/embed",
      body: JSON.stringify([{ ...valid[0], meta: "x" }]),
      status: 400,
      code: "invalid_request",
    },
    { name: "empty array", path: "/test/embed", body: "[]", status: 400, code: "empty_batch" },
    {
      name: "empty wrapped array",
      path: "/test/embed",
      body: '{"chunks":[]}',
      status: 400,
      code: "empty_batch",
    },
    {
      name: "empty text (seed)",
      path: "/test/embed",
      body: JSON.stringify([valid[0], { ...valid[1], contents: "   " }]),
      status: 400,
      code: "empty_text",
    },
    {
      name: "empty text (native)",
      path: "/v1/collections/docs/chunks",
      body: JSON.stringify({
        chunks: [
          { id: "a", text: "fine" },
          { id: "b", text: "" },
        ],
      }),
      status: 400,
      code: "empty_text",
    },
    {
      name: "duplicate chunk ids",
      path: "/v1/collections/docs/chunks",
      body: JSON.stringify({
        chunks: [
          { id: "a", text: "one" },
          { id: "a", text: "two" },
        ],
      }),
      status: 400,
      code: "duplicate_chunk_id",
    },
    {
      name: "invalid collection name",
      path: "/v1/collections/bad%20name/chunks",
      body: JSON.stringify({ chunks: [{ id: "a", text: "one" }] }),
      status: 400,
      code: "invalid_request",
    },
    {
      name: "oversized body",
      path: "/test/embed",
      body: JSON.stringify(
        Array.from({ length: 20 }, (_, i) => ({
          ...valid[0],
          chunk_id: `big-${i}`,
          contents: "x".repeat(5000),
        })),
      ),
      status: 413,
      code: "payload_too_large",
    },
    {
      name: "more chunks than the whole queue holds (waiting cannot help)",
      path: "/v1/collections/docs/chunks",
      body: JSON.stringify({ chunks: Array.from({ length: 101 }, (_, i) => ({ id: `q-${i}`, text: "t" })) }),
      status: 413,
      code: "payload_too_large",
    },
    {
      name: "metadata nested 5,000 levels deep",
      path: "/v1/collections/docs/chunks",
      body: `{"chunks":[{"id":"ok","text":"fine"},{"id":"deep","text":"t","metadata":${'{"a":'.repeat(5000)}1${"}".repeat(5000)}}]}`,
      status: 400,
      code: "invalid_request",
    },
    {
      name: "an integer chunk id beyond 2^53 (not exact in JSON)",
      path: "/v1/collections/docs/chunks",
      body: '{"chunks":[{"id":9007199254740993,"text":"t"}]}',
      status: 400,
      code: "invalid_request",
    },
    {
      name: "a search filter with 1,000 keys",
      path: "/v1/collections/docs/search",
      body: JSON.stringify({
        query: "q",
        filter: Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`k${i}`, i])),
      }),
      status: 400,
      code: "invalid_request",
    },
    {
      name: "a search filter value list of 2,000",
      path: "/v1/collections/docs/search",
      body: JSON.stringify({ query: "q", filter: { k: Array.from({ length: 2_000 }, (_, i) => i) } }),
      status: 400,
      code: "invalid_request",
    },
    {
      name: "a blank search query",
      path: "/v1/collections/docs/search",
      body: JSON.stringify({ query: "   " }),
      status: 400,
      code: "invalid_request",
    },
    {
      name: "not JSON content type",
      path: "/test/embed",
      body: "chunk_id=a",
      status: 415,
      code: "unsupported_media_type",
    },
  ];

  for (const testCase of cases) {
    it(`${testCase.name} → ${testCase.status} ${testCase.code}, nothing enqueued`, async () => {
      const before = await pending();
      const contentType = testCase.code === "unsupported_media_type" ? "text/plain" : "application/json";
      const response = await send(testCase.path, testCase.body, contentType);
      assert.equal(response.status, testCase.status, JSON.stringify(response.body));
      assert.equal(response.body.error.code, testCase.code);
      assert.ok(response.body.error.message.length > 0, "message explains the problem");
      assert.equal(await pending(), before, "queue unchanged");
    });
  }

  it("a validation error names the field and the allowed values first, one message per problem", async () => {
    const overflow = await send(
      "/v1/collections/docs/chunks",
      JSON.stringify({ chunks: [{ id: "a", text: "t" }], overflow: "bogus" }),
    );
    assert.equal(overflow.status, 400);
    assert.equal(overflow.body.error.message, "body/overflow must be one of: split, truncate, reject, pool");
    assert.deepEqual(overflow.body.error.details?.problems, [
      {
        path: "body/overflow",
        message: "must be one of: split, truncate, reject, pool",
        allowed: ["split", "truncate", "reject", "pool"],
      },
    ]);

    const id = await send(
      "/v1/collections/docs/chunks",
      JSON.stringify({ chunks: [{ id: true, text: "t" }] }),
    );
    assert.equal(id.body.error.message, "body/chunks/0/id must be a string or an integer");

    // The seed body is an array or {"chunks": [...]}: the branch the value matched explains the problem.
    const contents = await send("/test/embed", JSON.stringify([{ ...valid[0], contents: 42 }]));
    assert.equal(contents.body.error.code, "invalid_request");
    assert.equal(contents.body.error.message, "body/0/contents must be a string");
    const wrapped = await send("/test/embed", JSON.stringify({ chunks: [{ ...valid[0], meta: 7 }] }));
    assert.equal(wrapped.body.error.message, "body/chunks/0/meta must be an object or null");

    const selector = await send("/v1/dead-letters/replay", JSON.stringify({ all: true, job_id: "j" }));
    assert.equal(selector.status, 400);
    assert.equal(selector.body.error.message, 'body must have exactly one of "all": true, "job_id" or "ids"');

    const filter = await send(
      "/v1/collections/docs/search",
      JSON.stringify({ query: "q", filter: { a: {} } }),
    );
    assert.equal(
      filter.body.error.message,
      "body/filter/a must be a string, a number, a boolean or an array",
    );
  });

  it("query values are not coerced: limit=true is a 400, limit=20 works", async () => {
    for (const path of [
      "/v1/jobs/none?limit=true",
      "/v1/dead-letters?limit=true",
      "/v1/dead-letters?limit=1.5",
      "/v1/dead-letters?after=",
      "/v1/jobs?limit=0x10",
      "/test/status?threshold=true",
      "/test/status?threshold=",
    ]) {
      const response = await fetch(`${server.url}${path}`);
      const body = (await response.json()) as ErrorBody;
      assert.equal(response.status, 400, `${path}: ${JSON.stringify(body)}`);
      assert.equal(body.error.code, "invalid_request");
      assert.match(
        body.error.message,
        /^querystring\/(limit|after|threshold) must be (an integer|a number)$/,
      );
    }
    const page = await fetch(`${server.url}/v1/dead-letters?limit=20&after=0`);
    assert.equal(page.status, 200);
    const status = await fetch(`${server.url}/test/status?threshold=0.25`);
    assert.equal(((await status.json()) as { threshold_ratio: number }).threshold_ratio, 0.25);
    const small = await fetch(`${server.url}/test/status?threshold=1e-3`);
    assert.equal(small.status, 200, "an exponent is a number");
    const flag = await send("/test/embed?replace_documents=1", JSON.stringify(seedChunks(1, "flag")));
    assert.equal(flag.status, 400, "a boolean is true or false");
    assert.equal(flag.body.error.message, "querystring/replace_documents must be a boolean");
  });

  it("a dead-letter id beyond 2^53 is refused, not read as another id", async () => {
    for (const body of ['{"ids":[9007199254740993]}', '{"ids":[1e300]}']) {
      const response = await send("/v1/dead-letters/replay", body);
      assert.equal(response.status, 400, body);
      assert.equal(response.body.error.code, "invalid_request");
      assert.match(response.body.error.message, /^body\/ids\/0 must be <= 9007199254740991$/);
    }
  });

  it("413 states the limits: body bytes and chunks per request", async () => {
    const big = await send(
      "/test/embed",
      JSON.stringify(seedChunks(1, "b").map((c) => ({ ...c, contents: "x".repeat(70_000) }))),
    );
    assert.equal(big.status, 413);
    assert.match(big.body.error.message, /larger than 65536 bytes \(BODY_LIMIT_BYTES\)/);
    assert.equal(big.body.error.details?.limit_bytes, 65536);
    const many = await send(
      "/v1/collections/docs/chunks",
      JSON.stringify({ chunks: Array.from({ length: 101 }, (_, i) => ({ id: `m-${i}`, text: "t" })) }),
    );
    assert.equal(many.status, 413);
    assert.match(many.body.error.message, /at most 100 \(MAX_QUEUE_SIZE\)/);
  });

  it("a method a path does not have is 405 with Allow, before any body is read", async () => {
    for (const [method, path, allow] of [
      ["PUT", "/v1/status", "GET, HEAD"],
      ["PATCH", "/v1/jobs/some-job", "DELETE, GET, HEAD"],
      ["QUERY", "/v1/jobs/some-job", "DELETE, GET, HEAD"],
    ] as const) {
      const { status, headers, body } = await rawRequest(`${server.url}${path}`, method);
      assert.equal(status, 405, `${method} ${path}: ${body}`);
      assert.equal(headers.allow, allow);
      assert.equal((JSON.parse(body) as ErrorBody).error.code, "method_not_allowed");
    }
    const missing = await rawRequest(`${server.url}/v2/nothing`, "QUERY");
    assert.equal(missing.status, 404);
  });

  it("a client trickling its body gets 408 and its connection closed, within a bounded time", async () => {
    const { port } = new URL(server.url);
    const socket = connect(Number(port), "127.0.0.1");
    await once(socket, "connect");
    const started = Date.now();
    socket.write(
      "POST /v1/collections/docs/chunks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
    );
    // One byte every 200 ms: each arrives well within any idle timeout, the whole never does.
    const trickle = setInterval(() => {
      if (!socket.destroyed) socket.write(" ");
    }, 200);
    let received = "";
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString();
    });
    socket.on("error", () => {}); // writes after the server closed
    await once(socket, "close");
    clearInterval(trickle);
    const elapsed = Date.now() - started;
    assert.match(received, /^HTTP\/1\.1 408 /);
    assert.match(received, /"code":"request_timeout"/);
    assert.match(received, /BODY_TIMEOUT_SECONDS/);
    assert.ok(elapsed >= 900 && elapsed < 10_000, `closed after ${elapsed} ms (BODY_TIMEOUT_SECONDS is 1)`);
  });

  it("a request that would overflow MAX_QUEUE_SIZE gets 429 with Retry-After and enqueues nothing", async () => {
    const before = await pending();
    const fits = seedChunks(100 - before, "fit");
    const accepted = await send("/test/embed", JSON.stringify(fits));
    assert.equal(accepted.status, 202);
    // The rate ceiling lets the pipeline take at most one chunk meanwhile.
    assert.ok((await pending()) >= 99);
    const refused = await send("/test/embed", JSON.stringify(seedChunks(2, "over")));
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error.code, "queue_full");
    const retryAfter = Number(refused.headers.get("retry-after"));
    assert.ok(
      Number.isInteger(retryAfter) && retryAfter >= 1,
      `Retry-After is a positive integer: ${retryAfter}`,
    );
    assert.ok((await pending()) <= 100, "nothing of the refused request was enqueued");
  });

  it("a malformed URL gets the error envelope", async () => {
    for (const path of ["/v1/jobs/%E0%A4%A", "/v1/collections/docs/documents/%E0%A4%A"]) {
      const response = await fetch(`${server.url}${path}`, {
        method: path.includes("documents") ? "DELETE" : "GET",
      });
      assert.equal(response.status, 400);
      const body = (await response.json()) as ErrorBody;
      assert.equal(body.error.code, "invalid_request", JSON.stringify(body));
    }
  });

  it("unknown job → 404 job_not_found; unknown route → 404 not_found", async () => {
    const job = await fetch(`${server.url}/v1/jobs/nope`);
    assert.equal(job.status, 404);
    assert.equal(((await job.json()) as ErrorBody).error.code, "job_not_found");
    const route = await fetch(`${server.url}/v2/whatever`);
    assert.equal(route.status, 404);
    assert.equal(((await route.json()) as ErrorBody).error.code, "not_found");
  });
});
