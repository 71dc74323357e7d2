import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { VectorRecord } from "../../src/domain/types.js";
import { loadTokenizerCounter, type TokenCounter } from "../../src/embedder/remote/token-counter.js";
import type { HttpServer } from "../../src/main.js";
import {
  capturingStore,
  embeddedTwice,
  type FakeEngine,
  fakeVector,
  POISON,
  startFakeEngine,
  unit,
} from "../helpers/fake-embedding-engine.js";
import { waitForJobDone } from "../helpers/fixtures.js";
import { startInProcess } from "../helpers/in-process-server.js";
import { tempDir, tokenizerDir } from "../helpers/paths.js";
import { getJson, postJson } from "../helpers/server-process.js";

const TEI_INFO = {
  model_id: "sentence-transformers/all-MiniLM-L6-v2",
  model_sha: "8b3219a92973c328a8e22fadcfa821b5dc75636a",
  // Below the MiniLM profile's 256: the engine's own limit must win.
  max_input_length: 128,
  max_client_batch_size: 4,
};

interface Receipt {
  chunk_id: string;
  state: string;
  tokens: number | null;
  split: boolean;
  windows: number | null;
  model: string | null;
  last_error: string | null;
}

describe("TEI protocol (POST /embed, GET /info) against a fake following TEI's documented API", () => {
  let counter: TokenCounter;
  let engine: FakeEngine;
  let server: HttpServer;
  const written = new Map<string, VectorRecord>();

  before(async () => {
    counter = await loadTokenizerCounter(tokenizerDir(), tempDir("tok"));
    engine = await startFakeEngine({
      protocol: "tei",
      tei: TEI_INFO,
      countTokens: (text) => counter.count(text),
    });
    server = await startInProcess(
      {
        EMBEDDER: "remote",
        EMBEDDER_PROTOCOL: "tei",
        EMBEDDER_URL: engine.url,
        EMBEDDING_MODEL: tokenizerDir(),
        EMBEDDING_PASSAGE_PREFIX: "passage: ",
        MAX_ATTEMPTS: "3",
        RETRY_BASE_MS: "50",
        RETRY_MAX_MS: "200",
      },
      { decorateStore: (inner) => capturingStore(inner, written) },
    );
  });
  after(async () => {
    await server?.shutdown(2000);
    await engine?.stop();
  });

  it("takes the model, its revision and the limits from /info", async () => {
    const info = await getJson<{
      model_name: string;
      max_tokens: number;
      token_counter: string;
      dimension: number;
    }>(`${server.url}/model-info`);
    const host = new URL(engine.url).host;
    assert.equal(
      info.body.model_name,
      `remote:tei:${TEI_INFO.model_id}#${TEI_INFO.model_sha.slice(0, 12)}@${host}`,
    );
    assert.equal(info.body.max_tokens, 128, "TEI's max_input_length caps the profile's limit");
    assert.equal(info.body.token_counter, "tokenizer");
    assert.equal(info.body.dimension, 16, "dimension discovered from the first call");
  });

  it("embeds prefixed texts within TEI's limits, splits a long one, and dead-letters the input TEI refuses", async () => {
    const chunks = Array.from({ length: 12 }, (_, i) => ({
      id: `t-${i}`,
      text: `Leaflet section ${i}: store below 25 °C.`,
    }));
    chunks.push({ id: "long", text: Array.from({ length: 400 }, (_, i) => `word${i}`).join(" ") });
    chunks.push({ id: "bad", text: `this one carries ${POISON} and TEI refuses it` });
    const accepted = await postJson<{ job_id: string }>(`${server.url}/v1/collections/tei/chunks`, {
      chunks,
    });
    const job = await waitForJobDone(server.url, accepted.body.job_id);
    assert.equal(job.counts.stored, 13, JSON.stringify(job.counts));
    assert.equal(job.counts.dead, 1);
    const [failure] = job.failures;
    assert.equal(failure?.chunk_id, "bad");
    assert.match(
      failure?.reason ?? "",
      /answered 422: input \d+ contains forbidden content/,
      "the engine's own message",
    );

    const receipts = await getJson<{ chunks: Receipt[] }>(
      `${server.url}/v1/jobs/${accepted.body.job_id}?limit=100`,
    );
    const long = receipts.body.chunks.find((c) => c.chunk_id === "long")!;
    assert.equal(long.split, true);
    assert.ok((long.windows ?? 0) >= 5, `split into ${long.windows} windows of at most 128 tokens`);
    assert.ok((long.tokens ?? 0) > 800, "the receipt counts the whole text");

    // Only the poisoned input was refused: no batch over max_client_batch_size, no input over max_input_length.
    const refusals = engine.requests.filter((r) => r.status !== 200);
    assert.ok(refusals.length >= 2, "refused in its batch, then alone");
    assert.ok(engine.requests.every((r) => r.inputs <= TEI_INFO.max_client_batch_size));
    assert.deepEqual(embeddedTwice(engine), [], "isolating the refused chunk re-sent no embedded text");

    // Every stored vector is the engine's vector of the prefixed text (window), normalised.
    assert.equal(written.size, 12 + (long.windows ?? 0));
    for (const record of written.values()) {
      const text = String(record.payload.window_text ?? record.payload.text);
      const expected = unit(fakeVector(TEI_INFO.model_id, `passage: ${text}`));
      assert.equal(
        engine.embedded.get(`${TEI_INFO.model_id}\u0000passage: ${text}`),
        1,
        `${record.chunkId} sent once, prefixed`,
      );
      const worst = Math.max(...Array.from(record.vector, (value, d) => Math.abs(value - expected[d]!)));
      assert.ok(worst < 1e-6, `${record.chunkId}: the engine's vector, normalised (off by ${worst})`);
    }
  });
});
