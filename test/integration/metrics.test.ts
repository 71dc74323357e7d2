import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { HttpServer } from "../../src/main.js";
import { waitForJobDone } from "../helpers/fixtures.js";
import { startInProcess } from "../helpers/in-process-server.js";
import { parsePrometheus, value } from "../helpers/prometheus.js";
import { postJson } from "../helpers/server-process.js";

describe("GET /metrics (Prometheus)", () => {
  let server: HttpServer;

  before(async () => {
    // A rate ceiling keeps chunks in the queue long enough to see the depth gauge above zero.
    server = await startInProcess({ EMBEDDING_MAX_RATE: "20" });
  });
  after(async () => {
    await server.shutdown(5_000);
  });

  async function scrape() {
    const response = await fetch(`${server.url}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    return parsePrometheus(await response.text());
  }

  it("parses as Prometheus text, with rag_embed_* metrics and the Node defaults", async () => {
    const { types } = await scrape();
    for (const [name, type] of [
      ["rag_embed_queue_pending_chunks", "gauge"],
      ["rag_embed_queue_pending_tokens", "gauge"],
      ["rag_embed_dead_letters", "gauge"],
      ["rag_embed_chunks_accepted_total", "counter"],
      ["rag_embed_chunks_stored_total", "counter"],
      ["rag_embed_chunks_unchanged_total", "counter"],
      ["rag_embed_chunks_failed_total", "counter"],
      ["rag_embed_chunks_dead_total", "counter"],
      ["rag_embed_embed_duration_seconds", "histogram"],
      ["rag_embed_store_duration_seconds", "histogram"],
      ["rag_embed_batch_chunks", "histogram"],
      ["process_cpu_seconds_total", "counter"],
      ["nodejs_heap_size_used_bytes", "gauge"],
    ] as const) {
      assert.equal(types.get(name), type, `${name} is a ${type}`);
    }
  });

  it("moves when chunks are ingested: depth while queued, then stored by collection", async () => {
    const count = 40;
    const before = (await scrape()).samples;
    const accepted = await postJson<{ job_id: string }>(`${server.url}/v1/collections/metrics_a/chunks`, {
      chunks: Array.from({ length: count }, (_, i) => ({
        id: `m-${i}`,
        text: `metric chunk ${i} `.repeat(5),
      })),
    });
    assert.equal(accepted.status, 202);

    const queued = (await scrape()).samples;
    assert.ok(value(queued, "rag_embed_queue_pending_chunks") > 0, "queue depth > 0 while queued");
    assert.ok(value(queued, "rag_embed_queue_pending_tokens") > 0, "queued tokens > 0");
    assert.equal(
      value(queued, "rag_embed_chunks_accepted_total", { collection: "metrics_a" }) -
        value(before, "rag_embed_chunks_accepted_total", { collection: "metrics_a" }),
      count,
    );

    await waitForJobDone(server.url, accepted.body.job_id);
    const done = (await scrape()).samples;
    const storedDelta =
      value(done, "rag_embed_chunks_stored_total", { collection: "metrics_a" }) -
      value(before, "rag_embed_chunks_stored_total", { collection: "metrics_a" });
    assert.equal(storedDelta, count, "stored counter rose by the number ingested");
    assert.equal(value(done, "rag_embed_queue_pending_chunks"), 0);
    assert.ok(value(done, "rag_embed_batch_chunks_count") >= 2, "batches observed (rate-limited to 20/s)");
    assert.equal(value(done, "rag_embed_batch_chunks_sum"), count);
    assert.ok(value(done, "rag_embed_embed_duration_seconds_count") >= 1);
    assert.ok(value(done, "rag_embed_store_duration_seconds_count") >= 1);
    assert.ok(value(done, "rag_embed_tokens_embedded_total") > count);
    assert.ok(
      value(done, "rag_embed_http_requests_total", {
        route: "/v1/collections/:collection/chunks",
        status: "202",
      }) >= 1,
      "HTTP requests counted by route template",
    );

    // The same chunks again: nothing to embed, counted as unchanged.
    const again = await postJson<{ job_id: string }>(`${server.url}/v1/collections/metrics_a/chunks`, {
      chunks: Array.from({ length: count }, (_, i) => ({
        id: `m-${i}`,
        text: `metric chunk ${i} `.repeat(5),
      })),
    });
    await waitForJobDone(server.url, again.body.job_id);
    const unchanged = (await scrape()).samples;
    assert.equal(value(unchanged, "rag_embed_chunks_unchanged_total", { collection: "metrics_a" }), count);
    assert.equal(value(unchanged, "rag_embed_chunks_stored_total", { collection: "metrics_a" }), storedDelta);
  });
});
