import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { openAiProtocol, parseTeiInfo, teiProtocol } from "../../src/embedder/remote/engine-protocol.js";
import { publicUrl } from "../../src/embedder/remote/remote-embedder.js";
import {
  engineMessage,
  failureFromNetwork,
  failureFromResponse,
  RemoteFailure,
  retryAfterMs,
} from "../../src/embedder/remote/remote-failure.js";
import { VectorCache } from "../../src/embedder/remote/vector-cache.js";

describe("remote failures", () => {
  it("reads Retry-After as OpenAI's retry-after-ms, seconds, or an HTTP date", () => {
    const now = Date.parse("2026-12-01T00:00:00Z");
    assert.equal(retryAfterMs(new Headers({ "retry-after-ms": "1500", "retry-after": "9" }), now), 1500);
    assert.equal(retryAfterMs(new Headers({ "retry-after": "2" }), now), 2000);
    assert.equal(retryAfterMs(new Headers({ "retry-after": "Tue, 01 Dec 2026 00:00:03 GMT" }), now), 3000);
    assert.equal(retryAfterMs(new Headers({ "retry-after": "soon" }), now), undefined);
    assert.equal(retryAfterMs(new Headers(), now), undefined);
  });

  it("classifies by status: 429 rate-limited, engine-side trouble unavailable, other 4xx the input's fault", () => {
    const kind = (status: number) => failureFromResponse(status, "{}", new Headers(), "POST x").kind;
    assert.equal(kind(429), "rate_limited");
    for (const status of [408, 424, 500, 502, 503, 504, 401, 403, 404])
      assert.equal(kind(status), "unavailable", `${status}`);
    for (const status of [400, 413, 422]) assert.equal(kind(status), "rejected", `${status}`);
    const limited = failureFromResponse(429, "", new Headers({ "retry-after": "4" }), "POST x");
    assert.equal(limited.retryAfterMs, 4000);
    assert.equal(limited.status, 429);
  });

  it("quotes the engine's own message from each engine's error shape", () => {
    assert.equal(
      engineMessage('{"error":{"message":"too long","type":"invalid_request_error"}}'),
      "too long",
    );
    assert.equal(
      engineMessage('{"error":"Input validation error","error_type":"validation"}'),
      "Input validation error",
    );
    assert.equal(engineMessage('{"message":"overloaded","code":429}'), "overloaded");
    assert.equal(
      engineMessage('{"detail":[{"msg":"field required"},{"msg":"bad type"}]}'),
      "field required; bad type",
    );
    assert.equal(engineMessage("<html>Bad gateway</html>"), "<html>Bad gateway</html>");
    assert.equal(engineMessage(""), "(empty body)");
    assert.ok(engineMessage("x".repeat(2000)).length < 600, "long bodies are cut");
  });

  it("names what happened to a request that got no answer", () => {
    const refused = new TypeError("fetch failed", {
      cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" }),
    });
    const failure = failureFromNetwork(refused, "POST http://127.0.0.1:9/v1/embeddings", 1000);
    assert.equal(failure.kind, "unavailable");
    assert.equal(failure.status, null);
    assert.match(failure.message, /unreachable: ECONNREFUSED \(connect ECONNREFUSED/);
    const timeout = failureFromNetwork(new DOMException("timed out", "TimeoutError"), "POST x", 1234);
    assert.match(timeout.message, /did not answer within 1234 ms/);
  });
});

describe("engine protocols", () => {
  it("openai: the SDK's baseURL convention, <baseURL>/embeddings", () => {
    assert.equal(
      openAiProtocol("https://api.openai.com/v1/", "m").url,
      "https://api.openai.com/v1/embeddings",
    );
    assert.equal(openAiProtocol("http://infinity:7997", "m").url, "http://infinity:7997/embeddings");
    const protocol = openAiProtocol("http://engine:8000/v1", "m");
    assert.equal(protocol.url, "http://engine:8000/v1/embeddings");
    assert.deepEqual(protocol.body(["a"]), { model: "m", input: ["a"], encoding_format: "float" });
  });

  it("openai: places embeddings by index, decodes base64, refuses malformed answers", () => {
    const protocol = openAiProtocol("http://e", "m");
    const base64 = Buffer.from(new Float32Array([0.5, -2]).buffer).toString("base64");
    const vectors = protocol.vectors(
      {
        data: [
          { index: 1, embedding: base64 },
          { index: 0, embedding: [1, 2] },
        ],
      },
      2,
    );
    assert.deepEqual(
      vectors.map((v) => Array.from(v)),
      [
        [1, 2],
        [0.5, -2],
      ],
    );
    for (const answer of [
      { data: [{ index: 0, embedding: [1] }] },
      {
        data: [
          { index: 0, embedding: [1] },
          { index: 0, embedding: [2] },
        ],
      },
      {
        data: [
          { index: 0, embedding: [] },
          { index: 1, embedding: [1] },
        ],
      },
      {
        data: [
          { index: 0, embedding: ["x"] },
          { index: 1, embedding: [1] },
        ],
      },
      { nothing: true },
    ]) {
      assert.throws(
        () => protocol.vectors(answer, 2),
        (error: unknown) => error instanceof RemoteFailure && error.kind === "unavailable",
      );
    }
  });

  it("tei: /embed with truncate off and normalize on; /info read defensively", () => {
    const protocol = teiProtocol("http://tei:8080/");
    assert.equal(protocol.url, "http://tei:8080/embed");
    assert.deepEqual(protocol.body(["a", "b"]), { inputs: ["a", "b"], normalize: true, truncate: false });
    assert.deepEqual(
      protocol.vectors([[1], [2]], 2).map((v) => Array.from(v)),
      [[1], [2]],
    );
    assert.throws(() => protocol.vectors([[1]], 2), RemoteFailure);
    assert.deepEqual(
      parseTeiInfo({
        model_id: "BAAI/bge-small-en-v1.5",
        model_sha: null,
        max_input_length: 512,
        max_client_batch_size: "32",
      }),
      {
        modelId: "BAAI/bge-small-en-v1.5",
        modelSha: undefined,
        maxInputLength: 512,
        maxClientBatchSize: undefined,
      },
    );
  });

  it("keeps credentials and query strings out of what it shows", () => {
    assert.equal(publicUrl("https://user:secret@api.example.com/v1?key=abc"), "https://api.example.com/v1");
    assert.equal(publicUrl("http://tei:8080/"), "http://tei:8080");
  });
});

describe("VectorCache", () => {
  it("returns what was stored and forgets the least recently used beyond its byte budget", () => {
    const vector = () => new Float32Array(4); // 16 bytes
    const cache = new VectorCache(48);
    const [a, b, c, d] = ["a", "b", "c", "d"].map(VectorCache.key);
    cache.set(a!, vector());
    cache.set(b!, vector());
    cache.set(c!, vector());
    assert.ok(cache.get(a!), "a used: now the most recent");
    cache.set(d!, vector());
    assert.equal(cache.size, 3);
    assert.equal(cache.get(b!), undefined, "b was the least recently used");
    assert.ok(cache.get(a!) && cache.get(c!) && cache.get(d!));
    assert.notEqual(VectorCache.key("passage: x"), VectorCache.key("query: x"));
  });
});
