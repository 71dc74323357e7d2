import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { ProcessingError } from "../../src/domain/errors.js";
import { RemoteEmbedder, type RemoteEmbedderOptions } from "../../src/embedder/remote/remote-embedder.js";
import { type FakeEngine, POISON, startFakeEngine } from "../helpers/fake-embedding-engine.js";

const countWords = (text: string) => text.split(/\s+/).length + 2;

function embedder(engine: FakeEngine, overrides: Partial<RemoteEmbedderOptions> = {}): RemoteEmbedder {
  return new RemoteEmbedder({
    protocol: "openai",
    url: `${engine.url}/v1`,
    apiKey: "sk-test",
    model: "m",
    tokenizer: null,
    cacheDir: "/nonexistent",
    maxTokens: 128,
    profileOverrides: {},
    rpm: 0,
    tpm: 0,
    maxBatch: 4,
    concurrency: 2,
    timeoutMs: 5000,
    retryBaseMs: 20,
    retryMaxMs: 100,
    ...overrides,
  });
}

describe("RemoteEmbedder's errors are what the pipeline needs", () => {
  const engines: FakeEngine[] = [];
  const start = async (options: Partial<Parameters<typeof startFakeEngine>[0]> = {}) => {
    const engine = await startFakeEngine({
      protocol: "openai",
      models: ["m"],
      countTokens: countWords,
      ...options,
    });
    engines.push(engine);
    return engine;
  };
  after(async () => {
    for (const engine of engines) await engine.stop();
  });

  it("rides out a 429 within the call, after its Retry-After, sending only the request that failed again", async () => {
    const engine = await start({ schedule: (n) => (n === 3 ? { status: 429, retryAfterSeconds: 1 } : null) });
    const remote = embedder(engine);
    await remote.load();
    const texts = Array.from({ length: 12 }, (_, i) => `text number ${i}`);
    const result = await remote.embed(texts, "passage");
    assert.equal(result.vectors.length, 12);
    assert.equal(engine.requests.length, 1 + 3 + 1, "probe, three requests, the refused one again");
    assert.ok(engine.requests.at(-1)!.at - engine.requests[2]!.at >= 950, "sent again after Retry-After");
    assert.ok([...engine.embedded.values()].every((count) => count === 1));
    const status = remote.status();
    assert.equal(status.state, "ok");
    assert.equal(status.details?.rateLimitedTotal, 1);
    await remote.close();
  });

  it("gives up for now with a retryable outage error carrying the time to come back, keeping what it got", async () => {
    // Request 2 goes through; from request 3 on, every request is refused with Retry-After: 1.
    const engine = await start({ schedule: (n) => (n >= 3 ? { status: 429, retryAfterSeconds: 1 } : null) });
    const remote = embedder(engine, { concurrency: 1 });
    await remote.load();
    const texts = Array.from({ length: 8 }, (_, i) => `text number ${i}`);
    const error = await remote.embed(texts, "passage").then(
      () => assert.fail("should fail"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof ProcessingError);
    assert.equal(error.retryable, true);
    assert.equal(error.outage, true, "not the texts' fault: the pipeline must not isolate them");
    assert.ok(
      (error.retryAfterMs ?? 0) > 500,
      `retry after ${error.retryAfterMs} ms (the engine's Retry-After)`,
    );
    assert.match(error.message, /rate limited: POST .* answered 429: Rate limit reached/);
    assert.equal(remote.status().state, "rate_limited");
    // The four texts of the request that succeeded are not sent again on the next try.
    const before = engine.requests.length;
    await assert.rejects(remote.embed(texts, "passage"));
    const resent = engine.requests.slice(before);
    assert.ok(resent.every((r) => r.inputs === 4) && resent.length > 0, "only the failed request's texts");
    await remote.close();
  });

  it("a refused input fails the call as not retryable, with the engine's message", async () => {
    const engine = await start();
    const remote = embedder(engine);
    await remote.load();
    const error = await remote.embed(["fine", `has ${POISON}`], "passage").then(
      () => assert.fail("should fail"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof ProcessingError);
    assert.equal(error.retryable, false);
    assert.equal(error.outage, false);
    assert.match(
      error.message,
      /refused the input: POST .* answered 400: input 1 contains forbidden content/,
    );
    await remote.close();
  });

  it("refuses to start against an engine that does not serve the model, and sends the API key", async () => {
    const engine = await start();
    await assert.rejects(
      embedder(engine, { model: "other" }).load(),
      /refused the start-up request: .*answered 404: The model 'other' does not exist/,
    );
    const remote = embedder(engine);
    const info = await remote.load();
    assert.equal(info.id, `remote:openai:m@${new URL(engine.url).host}`);
    assert.equal(info.dimension, 16);
    assert.equal(info.remote?.tokenCounter, "estimate");
    assert.ok(engine.requests.every((r) => r.authorization === "Bearer sk-test"));
    await remote.close();
  });

  it("refuses a token-per-minute limit that one text could exceed", async () => {
    const engine = await start();
    await assert.rejects(
      embedder(engine, { tpm: 100 }).load(),
      /EMBEDDER_TPM=100 is not more than the 128 tokens/,
    );
  });
});
