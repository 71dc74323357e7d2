import assert from "node:assert/strict";
import { basename } from "node:path";
import { after, before, describe, it } from "node:test";
import OpenAI, { APIError } from "openai";
import { RagEmbedClient } from "../../src/client/index.js";
import type { HttpServer } from "../../src/main.js";
import { waitForJobDone } from "../helpers/fixtures.js";
import { startInProcess } from "../helpers/in-process-server.js";
import { testModelDir } from "../helpers/paths.js";
import { getJson, postJson } from "../helpers/server-process.js";

/** OpenAI's base64 encoding: little-endian float32 bytes. */
function decodeBase64(value: string): Float32Array {
  const bytes = Buffer.from(value, "base64");
  const out = new Float32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}

function bytesOf(vector: ArrayLike<number>): Buffer {
  return Buffer.from(Float32Array.from(vector).buffer);
}

async function expectApiError(promise: Promise<unknown>, status: number, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof APIError, `an APIError, got ${String(error)}`);
    assert.equal(error.status, status);
    assert.equal(error.code, code);
    return true;
  });
}

describe("POST /v1/embeddings with the official openai client", () => {
  let server: HttpServer;
  let client: OpenAI;
  const model = basename(testModelDir());
  const texts = ["Take one tablet twice a day after meals.", "복용 전 의사와 상담하십시오."];

  before(async () => {
    server = await startInProcess({});
    client = new OpenAI({ apiKey: "not-needed", baseURL: `${server.url}/v1`, maxRetries: 0 });
  });
  after(async () => {
    await server.shutdown(5_000);
  });

  it("returns a shuffled mixed-length request in the caller's order though it runs sorted by length", async () => {
    const words = "aspirin lowers the risk of heart attack in adults with diabetes but raises bleeding".split(
      " ",
    );
    // 1 to 120 words in a fixed, unsorted order: sorted by length they span many forward passes.
    const lengths = [37, 2, 120, 9, 1, 64, 15, 88, 4, 27, 51, 6, 110, 3, 19, 73];
    const input = lengths.map((n, i) =>
      Array.from({ length: n }, (_, k) => words[(k + i) % words.length]).join(" "),
    );
    const batch = await client.embeddings.create({ model, input });
    assert.deepEqual(
      batch.data.map((d) => d.index),
      input.map((_, i) => i),
    );
    for (const [i, text] of input.entries()) {
      const [alone] = (await client.embeddings.create({ model, input: text })).data;
      const got = batch.data[i]?.embedding ?? [];
      const cosine = got.reduce((sum, v, d) => sum + v * (alone?.embedding[d] ?? 0), 0);
      assert.ok(cosine > 0.999, `input ${i} (${lengths[i]} words): cosine ${cosine} to its own vector`);
    }
  });

  it("float and base64 give bit-identical vectors of the model's dimension, with usage", async () => {
    const float = await client.embeddings.create({ model, input: texts, encoding_format: "float" });
    assert.equal(float.object, "list");
    assert.equal(float.data.length, 2);
    assert.deepEqual(
      float.data.map((d) => [d.object, d.index]),
      [
        ["embedding", 0],
        ["embedding", 1],
      ],
    );
    for (const item of float.data) {
      assert.ok(Array.isArray(item.embedding));
      assert.equal(item.embedding.length, 384);
    }
    assert.ok(float.usage.prompt_tokens > 4);
    assert.equal(float.usage.total_tokens, float.usage.prompt_tokens);

    const base64 = await client.embeddings.create({ model, input: texts, encoding_format: "base64" });
    for (const [index, item] of base64.data.entries()) {
      assert.equal(typeof item.embedding, "string");
      const decoded = decodeBase64(item.embedding as unknown as string);
      assert.ok(
        bytesOf(decoded).equals(bytesOf(float.data[index]!.embedding)),
        `input ${index}: base64 and float vectors are bit-identical`,
      );
    }
    assert.deepEqual(base64.usage, float.usage);

    // Without encoding_format the client asks for base64 and decodes it itself. (Same inputs: a text
    // batched with others is padded, which may move the last bits of its vector.)
    const defaulted = await client.embeddings.create({ model, input: texts });
    assert.equal(defaulted.data.length, 2);
    for (const [index, item] of defaulted.data.entries()) {
      assert.ok(bytesOf(item.embedding).equals(bytesOf(float.data[index]!.embedding)));
    }
  });

  it("the vector equals the server's own: searching with the same text scores ≈ 1.0 on its chunk", async () => {
    const accepted = await postJson<{ job_id: string }>(`${server.url}/v1/collections/oai/chunks`, {
      chunks: texts.map((text, i) => ({ id: `t-${i}`, text })),
    });
    assert.equal(accepted.status, 202);
    await waitForJobDone(server.url, accepted.body.job_id);

    const [embedded] = (await client.embeddings.create({ model, input: [texts[0]!] })).data;
    const norm = Math.hypot(...embedded!.embedding);
    assert.ok(Math.abs(norm - 1) < 1e-4, `normalised (norm ${norm})`);

    const search = await postJson<{ hits: Array<{ id: string; score: number }> }>(
      `${server.url}/v1/collections/oai/search`,
      { query: texts[0], top_k: 2 },
    );
    assert.equal(search.status, 200);
    assert.equal(search.body.hits[0]?.id, "t-0");
    assert.ok(
      Math.abs((search.body.hits[0]?.score ?? 0) - 1) < 1e-4,
      `score ${search.body.hits[0]?.score} ≈ 1`,
    );
  });

  it("accepts the full model id and an equal dimensions; refuses other models and dimensions", async () => {
    const full = await client.embeddings.create({ model: testModelDir(), input: "x", dimensions: 384 });
    assert.equal(full.data[0]?.embedding.length, 384);
    assert.equal(full.model, model, "answers under the served name, not the path");

    await expectApiError(
      client.embeddings.create({ model: "text-embedding-3-small", input: "x" }),
      404,
      "model_not_found",
    );
    await expectApiError(
      client.embeddings.create({ model, input: "x", dimensions: 128 }),
      400,
      "invalid_request",
    );
    const tokens = await postJson<{ error: { code: string; message: string } }>(
      `${server.url}/v1/embeddings`,
      {
        model,
        input: [1, 2, 3],
      },
    );
    assert.equal(tokens.status, 400);
    assert.match(tokens.body.error.message, /token arrays/i);
    assert.match(
      tokens.body.error.message,
      /check_embedding_ctx_length=False/,
      "tells LangChain users what to set",
    );
    await expectApiError(client.embeddings.create({ model, input: ["ok", "  "] }), 400, "empty_text");

    const models = await client.models.list();
    assert.deepEqual(
      models.data.map((m) => m.id),
      [model],
      "a local directory is served under its base name",
    );
  });

  it("over-long input is 422 text_too_long unless the request asks for truncate (usage = 256 tokens)", async () => {
    const long = "paracetamol ".repeat(400);
    await expectApiError(client.embeddings.create({ model, input: ["short", long] }), 422, "text_too_long");

    const truncated = await client.embeddings.create({
      model,
      input: long,
      encoding_format: "float",
      overflow: "truncate",
    } as OpenAI.EmbeddingCreateParams);
    assert.equal(truncated.usage.prompt_tokens, 256, "the model's limit, special tokens included");
    assert.equal(truncated.data[0]?.embedding.length, 384);

    await expectApiError(
      client.embeddings.create({ model, input: long, overflow: "reject" } as OpenAI.EmbeddingCreateParams),
      422,
      "text_too_long",
    );
  });
});

describe("SERVED_MODEL_NAME: OpenAI clients and the SDK use the model by name", () => {
  let server: HttpServer;
  const served = "leaflet-embedder";

  before(async () => {
    server = await startInProcess({ SERVED_MODEL_NAME: served });
  });
  after(async () => {
    await server.shutdown(5_000);
  });

  it("lists the served name, answers to it, to the hub id and to the base name", async () => {
    const client = new OpenAI({ apiKey: "not-needed", baseURL: `${server.url}/v1`, maxRetries: 0 });
    const models = await client.models.list();
    assert.deepEqual(
      models.data.map((m) => m.id),
      [served],
    );

    const byName = await client.embeddings.create({
      model: served,
      input: "dosage",
      encoding_format: "float",
    });
    assert.equal(byName.model, served);
    assert.equal(byName.data[0]?.embedding.length, 384);
    // The test model's config.json says it is sentence-transformers/all-MiniLM-L6-v2.
    for (const alias of [
      "sentence-transformers/all-MiniLM-L6-v2",
      "all-MiniLM-L6-v2",
      basename(testModelDir()),
    ]) {
      const other = await client.embeddings.create({
        model: alias,
        input: "dosage",
        encoding_format: "float",
      });
      assert.deepEqual(other.data[0]?.embedding, byName.data[0]?.embedding, `${alias} is the same model`);
    }
    await expectApiError(
      client.embeddings.create({ model: "all-mpnet-base-v2", input: "x" }),
      404,
      "model_not_found",
    );

    const info = await getJson<{ model_name: string; model_source: string }>(`${server.url}/model-info`);
    assert.equal(info.body.model_name, served);
    assert.equal(info.body.model_source, testModelDir());
  });

  it("the SDK finds the served name itself and embeds with it", async () => {
    const sdk = new RagEmbedClient({ baseUrl: server.url });
    assert.deepEqual(
      (await sdk.models()).data.map((m) => m.id),
      [served],
    );
    const result = await sdk.embed(["first text", "second text"]);
    assert.equal(result.model, served);
    assert.equal(result.data.length, 2);
    assert.equal(result.data[1]?.embedding.length, 384);
    const status = await sdk.status();
    assert.ok(status.model.ready && status.model.name === served, "/v1/status names the served model");
  });
});
