import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { loadSettings } from "../../src/config/settings.js";
import { type HttpServer, startHttpServer } from "../../src/main.js";
import { createLogger } from "../../src/observability/logger.js";
import { embeddedTwice, type FakeEngine, startFakeEngine } from "../helpers/fake-embedding-engine.js";
import { waitForJobDone } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/paths.js";
import { getJson, postJson, waitFor } from "../helpers/server-process.js";

interface EmbedderStatus {
  engine: string;
  state: string;
  last_error: string | null;
  failing_since: string | null;
  last_success_at: string | null;
}

const status = async (url: string) =>
  (await getJson<{ embedder: EmbedderStatus; dead_letters: number }>(`${url}/v1/status`)).body;

describe("the remote engine down for a while: work waits, /v1/status says why, nothing is lost", () => {
  let engine: FakeEngine;
  let server: HttpServer;

  before(async () => {
    engine = await startFakeEngine({
      protocol: "openai",
      models: ["m"],
      countTokens: (text) => text.split(/\s+/).length + 2,
      // Slow enough that the outage lands in the middle of the ingest.
      latencyMs: 40,
    });
  });
  after(async () => {
    await server?.shutdown(2000);
    await engine?.stop();
  });

  it("waits for an engine that is down at start-up, and reports it", async () => {
    await engine.stop();
    const settings = loadSettings({
      DATA_DIR: tempDir("remote-outage"),
      PORT: "0",
      LOG_LEVEL: "silent",
      EMBEDDER: "remote",
      EMBEDDER_URL: `${engine.url}/v1`,
      EMBEDDER_MODEL: "m",
      EMBEDDER_MAX_TOKENS: "256",
      EMBEDDER_MAX_BATCH: "8",
      EMBEDDER_CONCURRENCY: "2",
      MAX_ATTEMPTS: "30",
      RETRY_BASE_MS: "100",
      RETRY_MAX_MS: "800",
    });
    server = await startHttpServer(settings, createLogger(settings.logLevel));
    const starting = await waitFor(
      async () => {
        const body = await status(server.url);
        return body.embedder.last_error ? body : null;
      },
      { what: "a start-up failure in /v1/status" },
    );
    assert.equal(starting.embedder.state, "unavailable");
    assert.ok(starting.embedder.failing_since);
    assert.match(starting.embedder.last_error ?? "", /unreachable: ECONNREFUSED/);
    assert.equal((await fetch(`${server.url}/ready`)).status, 503, "not ready without the engine");

    await engine.start();
    await server.ready;
    assert.equal((await fetch(`${server.url}/ready`)).status, 200);
  });

  it("keeps chunks queued through an outage, retrying without dead letters, and stores all once it is back", async () => {
    const chunks = Array.from({ length: 200 }, (_, i) => ({ id: `o-${i}`, text: `outage chunk ${i} text` }));
    const accepted = await postJson<{ job_id: string }>(`${server.url}/v1/collections/outage/chunks`, {
      chunks,
    });
    await waitFor(async () => engine.requests.filter((r) => r.status === 200).length > 3, {
      what: "some embedding",
    });
    await engine.stop();
    const stoppedAt = Date.now();

    const down = await waitFor(
      async () => {
        const body = await status(server.url);
        return body.embedder.state === "unavailable" ? body : null;
      },
      { what: "the outage in /v1/status" },
    );
    // In-flight requests see their connection cut, later ones are refused.
    assert.match(down.embedder.last_error ?? "", /unreachable: (ECONNREFUSED|ECONNRESET|UND_ERR_SOCKET)/);
    assert.ok(down.embedder.failing_since, "since when");
    assert.ok(Date.parse(down.embedder.failing_since) >= stoppedAt - 1000);
    // Several seconds down: batches fail and are retried by the queue, none becomes a dead letter.
    await sleep(4000);
    const during = await status(server.url);
    assert.equal(during.dead_letters, 0);
    assert.equal(during.embedder.state, "unavailable");
    assert.match(during.embedder.last_error ?? "", /unreachable: ECONNREFUSED/);
    const job = await getJson<{ counts: { stored: number; total: number } }>(
      `${server.url}/v1/jobs/${accepted.body.job_id}`,
    );
    assert.ok(job.body.counts.stored < job.body.counts.total, "work waited for the engine");

    await engine.start();
    const done = await waitForJobDone(server.url, accepted.body.job_id);
    assert.equal(done.counts.stored, 200, JSON.stringify(done.counts));
    assert.equal(done.counts.dead, 0);
    const receipts = await getJson<{ chunks: Array<{ attempts: number }> }>(
      `${server.url}/v1/jobs/${accepted.body.job_id}?limit=1000`,
    );
    assert.ok(
      receipts.body.chunks.some((c) => c.attempts > 0),
      "the outage counted as retries",
    );
    const after = await status(server.url);
    assert.equal(after.embedder.state, "ok");
    assert.equal(after.embedder.failing_since, null);
    assert.deepEqual(embeddedTwice(engine), [], "no text embedded twice across the outage");
    for (const chunk of chunks) assert.equal(engine.embedded.get(`m\u0000${chunk.text}`), 1);
  });
});
