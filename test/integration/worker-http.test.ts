/**
 * The worker role's HTTP surface (src/server/worker-app.ts) in isolation: probes, the metrics it
 * exposes from the queue's stats, and the API-key rule, through Fastify's inject (no socket).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ModelInfo } from "../../src/domain/types.js";
import { createLogger } from "../../src/observability/logger.js";
import type { QueueStats } from "../../src/queue/job-queue.js";
import { Metrics } from "../../src/server/metrics.js";
import { buildWorkerApp } from "../../src/server/worker-app.js";
import { parsePrometheus, value } from "../helpers/prometheus.js";

const MODEL = { id: "test-model" } as ModelInfo;

function worker(options: { apiKeys?: string[]; stats?: QueueStats } = {}) {
  const state = { model: null as ModelInfo | null, shuttingDown: false };
  const metrics = new Metrics();
  const stats = options.stats ?? { pending: 0, running: 0, dead: 0, pendingTokens: 0 };
  metrics.observeQueue(async () => stats);
  const app = buildWorkerApp({
    logger: createLogger("silent"),
    metrics,
    model: () => state.model,
    isShuttingDown: () => state.shuttingDown,
    auth: { apiKeys: options.apiKeys ?? [], perKeyRequestsPerMinute: 0 },
  });
  return { app, state };
}

describe("worker HTTP: /health, /ready, /metrics", () => {
  it("is live at once, ready only once the model is loaded, and not ready while draining", async () => {
    const { app, state } = worker();
    const health = await app.inject({ method: "GET", url: "/health" });
    assert.equal(health.statusCode, 200);

    const loading = await app.inject({ method: "GET", url: "/ready" });
    assert.equal(loading.statusCode, 503);
    assert.equal(loading.json().error.code, "model_not_ready");
    assert.ok(Number(loading.headers["retry-after"]) > 0, "Retry-After while loading");

    state.model = MODEL;
    const ready = await app.inject({ method: "GET", url: "/ready" });
    assert.equal(ready.statusCode, 200);
    assert.deepEqual(ready.json(), { status: "ready", role: "worker", model: "test-model" });

    state.shuttingDown = true;
    const draining = await app.inject({ method: "GET", url: "/ready" });
    assert.equal(draining.statusCode, 503);
    assert.equal(draining.json().error.code, "shutting_down");
    assert.ok(Number(draining.headers["retry-after"]) > 0, "Retry-After while draining");
    // Liveness and metrics go on while the worker drains: the drain is worth watching.
    assert.equal((await app.inject({ method: "GET", url: "/health" })).statusCode, 200);
    assert.equal((await app.inject({ method: "GET", url: "/metrics" })).statusCode, 200);
    await app.close();
  });

  it("exposes the queue depth in chunks and in tokens, read from the queue at scrape time", async () => {
    const { app } = worker({ stats: { pending: 1234, running: 64, dead: 2, pendingTokens: 98_765 } });
    const response = await app.inject({ method: "GET", url: "/metrics" });
    assert.equal(response.statusCode, 200);
    assert.match(String(response.headers["content-type"]), /^text\/plain/);
    const { samples, types } = parsePrometheus(response.body);
    assert.equal(types.get("rag_embed_queue_pending_chunks"), "gauge");
    assert.equal(types.get("rag_embed_queue_pending_tokens"), "gauge");
    assert.equal(value(samples, "rag_embed_queue_pending_chunks"), 1234);
    assert.equal(value(samples, "rag_embed_queue_pending_tokens"), 98_765);
    assert.equal(value(samples, "rag_embed_queue_running_chunks"), 64);
    assert.equal(value(samples, "rag_embed_dead_letters"), 2);
    assert.match(response.body, /# HELP rag_embed_queue_pending_tokens .*tokens/);
    await app.close();
  });

  it("with API_KEYS, /metrics and /ready need a key as on the API; /health never does", async () => {
    const { app, state } = worker({ apiKeys: ["k1", "k2"] });
    state.model = MODEL;
    for (const url of ["/metrics", "/ready"]) {
      const missing = await app.inject({ method: "GET", url });
      assert.equal(missing.statusCode, 401, `${url} without a key`);
      assert.equal(missing.json().error.code, "unauthorized");
      const wrong = await app.inject({ method: "GET", url, headers: { authorization: "Bearer nope" } });
      assert.equal(wrong.statusCode, 401, `${url} with a wrong key`);
      const right = await app.inject({ method: "GET", url, headers: { authorization: "Bearer k2" } });
      assert.equal(right.statusCode, 200, `${url} with a key`);
    }
    assert.equal((await app.inject({ method: "GET", url: "/health" })).statusCode, 200);
    await app.close();
  });

  it("serves nothing else: data routes live on the API", async () => {
    const { app } = worker();
    const response = await app.inject({ method: "POST", url: "/test/embed", payload: [] });
    assert.equal(response.statusCode, 404);
    assert.equal(response.json().error.code, "not_found");
    await app.close();
  });
});
