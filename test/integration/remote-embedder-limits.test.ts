import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { loadTokenizerCounter, type TokenCounter } from "../../src/embedder/remote/token-counter.js";
import type { HttpServer } from "../../src/main.js";
import { embeddedTwice, type FakeEngine, startFakeEngine } from "../helpers/fake-embedding-engine.js";
import { type JobBody, waitForJobDone } from "../helpers/fixtures.js";
import { startInProcess } from "../helpers/in-process-server.js";
import { tempDir, tokenizerDir } from "../helpers/paths.js";
import { parsePrometheus } from "../helpers/prometheus.js";
import { getJson, postJson } from "../helpers/server-process.js";

const RPM = 300;
const TPM = 24_000;
const MAX_BATCH = 4;
const CONCURRENCY = 4;
const CHUNKS = 160;

/** Unique texts of 15–40 tokens, so the fake can tell every text apart. */
function texts(count: number, tag: string): Array<{ id: string; text: string }> {
  return Array.from({ length: count }, (_, i) => ({
    id: `${tag}-${i}`,
    text: `Record ${tag} ${i}: ${"patients received the study drug twice daily; ".repeat(1 + (i % 4))}`,
  }));
}

async function metric(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const { samples } = parsePrometheus(await (await fetch(`${url}/metrics`)).text());
  const sample = samples.find(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  return sample?.value ?? 0;
}

describe("remote engine with rate limits, 429s and failures: every chunk stored once, no text embedded twice, limits kept", () => {
  let counter: TokenCounter;
  let engine: FakeEngine;
  let server: HttpServer;

  before(async () => {
    counter = await loadTokenizerCounter(tokenizerDir(), tempDir("tok"));
    engine = await startFakeEngine({
      protocol: "openai",
      models: ["fake-model"],
      countTokens: (text) => counter.count(text),
      limits: { rpm: RPM, tpm: TPM, largestInputTokens: 256, concurrency: CONCURRENCY },
      // Answers take a while, as a provider's do, so requests overlap and the concurrency is tested.
      latencyMs: 150,
      schedule: (n) => {
        // A run of failures long enough that some requests exhaust their in-call retries: the batch
        // then goes back to the queue, and its retry must not send the texts already embedded.
        if (n >= 14 && n <= 21) return { status: 503 };
        if (n % 9 === 4) return { status: 429, retryAfterSeconds: 1 };
        if (n % 11 === 6) return { status: 500 };
        return null;
      },
    });
    server = await startInProcess({
      EMBEDDER: "remote",
      EMBEDDER_URL: `${engine.url}/v1`,
      EMBEDDER_MODEL: "fake-model",
      EMBEDDING_MODEL: tokenizerDir(),
      EMBEDDER_RPM: String(RPM),
      EMBEDDER_TPM: String(TPM),
      EMBEDDER_MAX_BATCH: String(MAX_BATCH),
      EMBEDDER_CONCURRENCY: String(CONCURRENCY),
      MAX_ATTEMPTS: "6",
      RETRY_BASE_MS: "100",
      RETRY_MAX_MS: "1000",
    });
  });
  after(async () => {
    await server?.shutdown(2000);
    await engine?.stop();
  });

  it("ingests through 429s, 500s and a 503 streak within RPM/TPM", async () => {
    const chunks = texts(CHUNKS, "lim");
    const accepted = await postJson<{ job_id: string }>(`${server.url}/v1/collections/limits/chunks`, {
      chunks,
    });
    assert.equal(accepted.status, 202);
    const job: JobBody = await waitForJobDone(server.url, accepted.body.job_id, 120_000);
    assert.equal(job.counts.stored, CHUNKS, JSON.stringify(job.counts));
    assert.equal(job.counts.dead, 0, JSON.stringify(job.failures));

    // The schedule fired: 429s, 500s and the 503 streak, which sent the batch back to the queue.
    const statuses = engine.requests.map((r) => r.status);
    assert.ok(statuses.filter((s) => s === 429).length >= 3, "several 429s were answered");
    assert.ok(statuses.includes(500) && statuses.includes(503));
    assert.ok(
      (await metric(server.url, "rag_embed_chunks_failed_total")) > 0,
      "the batch was retried by the queue",
    );
    const receipts = await getJson<{ chunks: Array<{ attempts: number; model: string }> }>(
      `${server.url}/v1/jobs/${accepted.body.job_id}?limit=1000`,
    );
    assert.ok(
      receipts.body.chunks.some((c) => c.attempts > 0),
      "the retry counted as an attempt",
    );
    assert.ok(
      receipts.body.chunks.every((c) => c.model === `remote:openai:fake-model@${new URL(engine.url).host}`),
      "receipts name the remote engine and model",
    );

    // Nothing the engine embedded was sent to it again: the retried batch reused the finished vectors.
    assert.deepEqual(embeddedTwice(engine), []);
    const sent = chunks.map((c) => `fake-model\u0000${c.text}`);
    assert.ok(
      sent.every((key) => engine.embedded.get(key) === 1),
      "every chunk's text embedded exactly once",
    );
    assert.ok((await metric(server.url, "rag_embed_remote_cache_hits_total")) > 0);

    // Limits: the engine checked every request against the promised rate and EMBEDDER_CONCURRENCY;
    // none was over, none came before a Retry-After had passed, and no request carried more than
    // EMBEDDER_MAX_BATCH texts.
    assert.deepEqual(engine.violations, []);
    assert.ok(engine.peakInFlight <= CONCURRENCY, `${engine.peakInFlight} requests in flight at once`);
    assert.ok(engine.peakInFlight >= 2, "several requests were in flight at once");
    assert.deepEqual(engine.earlyRetries, [], "requests waited for Retry-After");
    assert.ok(engine.requests.every((r) => r.inputs <= MAX_BATCH));
    assert.ok(
      engine.requests.some((r) => r.inputs === MAX_BATCH),
      "requests are packed up to EMBEDDER_MAX_BATCH",
    );

    // The 429s are visible where an operator looks.
    const rateLimited = statuses.filter((s) => s === 429).length;
    assert.equal(await metric(server.url, "rag_embed_remote_rate_limited_total"), rateLimited);
    assert.equal(
      await metric(server.url, "rag_embed_remote_requests_total", { outcome: "rate_limited" }),
      rateLimited,
    );
    const status = await getJson<{ embedder: Record<string, unknown> }>(`${server.url}/v1/status`);
    assert.equal(status.body.embedder.engine, "remote");
    assert.equal(status.body.embedder.state, "ok");
    assert.equal(status.body.embedder.rate_limited_total, rateLimited);
    assert.ok(Number(status.body.embedder.requests_last_minute) > 0);
    assert.ok(Number(status.body.embedder.tokens_last_minute) > 0);
    assert.ok(
      (await metric(server.url, "rag_embed_remote_request_duration_seconds_count", { outcome: "ok" })) > 0,
    );
  });
});

describe("the remote model is part of the fingerprint", () => {
  let engine: FakeEngine;
  const dataDir = tempDir("remote-model-change");

  before(async () => {
    engine = await startFakeEngine({
      protocol: "openai",
      models: ["model-a", "model-b"],
      countTokens: (text) => text.split(/\s+/).length + 2,
    });
  });
  after(async () => {
    await engine?.stop();
  });

  const serve = (model: string) =>
    startInProcess({
      DATA_DIR: dataDir,
      EMBEDDER: "remote",
      EMBEDDER_URL: `${engine.url}/v1`,
      EMBEDDER_MODEL: model,
      // No tokenizer (empty = unset): counted by the estimate against the declared limit.
      EMBEDDING_MODEL: "",
      EMBEDDER_MAX_TOKENS: "512",
    });

  it("another provider model is another profile: its collection refuses it (409), a new one embeds again; the same model, not", async () => {
    const chunks = texts(10, "fp");
    const ingest = async (server: HttpServer, collection = "fp") => {
      const accepted = await postJson<{ job_id: string }>(
        `${server.url}/v1/collections/${collection}/chunks`,
        {
          chunks,
        },
      );
      return waitForJobDone(server.url, accepted.body.job_id);
    };
    const first = await serve("model-a");
    assert.equal((await ingest(first)).counts.stored, 10);
    assert.equal((await ingest(first)).counts.unchanged, 10, "same model: nothing embedded again");
    await first.shutdown(2000);

    const second = await serve("model-b");
    try {
      // The collection is bound to model-a: model-b's vectors must not join it.
      const refused = await postJson<{ error: { code: string; message: string } }>(
        `${second.url}/v1/collections/fp/chunks`,
        { chunks },
      );
      assert.equal(refused.status, 409);
      assert.equal(refused.body.error.code, "model_mismatch");
      assert.match(refused.body.error.message, /model-a.*model-b/s);
      const job = await ingest(second, "fp_b");
      assert.equal(job.counts.stored, 10, "another model: every chunk embedded again");
      const info = await getJson<{ model_name: string; token_counter: string }>(`${second.url}/model-info`);
      assert.equal(info.body.model_name, `remote:openai:model-b@${new URL(engine.url).host}`);
      assert.equal(info.body.token_counter, "estimate");
    } finally {
      await second.shutdown(2000);
    }
    for (const chunk of chunks) {
      assert.equal(engine.embedded.get(`model-a\u0000${chunk.text}`), 1);
      assert.equal(engine.embedded.get(`model-b\u0000${chunk.text}`), 1);
    }
  });
});
