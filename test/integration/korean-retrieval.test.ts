import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  AutoTokenizer,
  env,
  type FeatureExtractionPipeline,
  type PreTrainedTokenizer,
  pipeline,
} from "@huggingface/transformers";
import type { HttpServer } from "../../src/main.js";
import { queueTokenEstimate } from "../../src/server/token-limits.js";
import { KOREAN_PASSAGES, KOREAN_QUERIES, koreanDocument } from "../fixtures/korean-retrieval.js";
import { waitForJobDone } from "../helpers/fixtures.js";
import { startInProcess } from "../helpers/in-process-server.js";
import { sharedModelDir, tempDir } from "../helpers/paths.js";
import { getJson, postJson } from "../helpers/server-process.js";

const E5_DIR = sharedModelDir("multilingual-e5-small-q4");

/**
 * The e5 directory under a neutral name, its config.json without `_name_or_path`: nothing names the
 * model, so only its own files (shape, tokenizer class) can give it the e5 profile. The big files are
 * links, not copies.
 */
function anonymousE5Copy(): string {
  const dir = join(tempDir("e5-copy"), "korean-embedder");
  mkdirSync(dir);
  symlinkSync(join(E5_DIR, "onnx"), join(dir, "onnx"));
  symlinkSync(join(E5_DIR, "tokenizer.json"), join(dir, "tokenizer.json"));
  copyFileSync(join(E5_DIR, "tokenizer_config.json"), join(dir, "tokenizer_config.json"));
  const config = JSON.parse(readFileSync(join(E5_DIR, "config.json"), "utf8")) as Record<string, unknown>;
  delete config._name_or_path;
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  return dir;
}

interface Hit {
  id: string;
  score: number;
}

/** Ingests every passage through the API, then asks every query: top-1 accuracy and the ranked ids. */
async function retrieval(
  server: HttpServer,
  collection: string,
): Promise<{ accuracy: number; misses: string[] }> {
  const accepted = await postJson<{ job_id: string }>(`${server.url}/v1/collections/${collection}/chunks`, {
    chunks: KOREAN_PASSAGES.map((p) => ({ id: p.id, text: p.text })),
  });
  assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
  const job = await waitForJobDone(server.url, accepted.body.job_id);
  assert.equal(job.counts.stored, KOREAN_PASSAGES.length);
  const misses: string[] = [];
  for (const { query, answer } of KOREAN_QUERIES) {
    const result = await postJson<{ hits: Hit[] }>(`${server.url}/v1/collections/${collection}/search`, {
      query,
      top_k: 1,
    });
    assert.equal(result.status, 200);
    const top = result.body.hits[0]?.id;
    if (top !== answer) misses.push(`${query} → ${top} (want ${answer})`);
  }
  return { accuracy: 1 - misses.length / KOREAN_QUERIES.length, misses };
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i] ?? 0) * (b[i] ?? 0);
  return sum;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return max;
}

describe("Korean on multilingual-e5-small, end to end through the HTTP API", () => {
  let server: HttpServer;
  let traceFile: string;
  let tokenizer: PreTrainedTokenizer;
  /** transformers.js' own feature-extraction pipeline on the same files: the reference. */
  let reference: FeatureExtractionPipeline;
  let e5: { accuracy: number; misses: string[] };

  const embedReference = async (text: string): Promise<Float32Array> => {
    const output = await reference(text, { pooling: "mean", normalize: true });
    const data = Float32Array.from(output.data as Float32Array);
    output.dispose();
    return data;
  };

  /** Rows the model received, per kind, from the worker's input trace. */
  const traced = (kind: "passage" | "query"): number[][] =>
    readFileSync(traceFile, "utf8")
      .split("\n")
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as { kind: string; rows: number[][] })
      .filter((entry) => entry.kind === kind)
      .flatMap((entry) => entry.rows);

  before(async () => {
    traceFile = join(tempDir("trace"), "inputs.jsonl");
    // Read by the worker process the server forks.
    process.env.RAG_EMBED_TRACE_INPUTS = traceFile;
    server = await startInProcess({ EMBEDDING_MODEL: anonymousE5Copy(), EMBEDDING_THREADS: "2" });
    delete process.env.RAG_EMBED_TRACE_INPUTS;
    env.allowLocalModels = true;
    env.allowRemoteModels = false;
    env.localModelPath = join(E5_DIR, "..");
    tokenizer = await AutoTokenizer.from_pretrained("multilingual-e5-small-q4");
    reference = await pipeline("feature-extraction", "multilingual-e5-small-q4", { dtype: "q8" });
  });
  after(async () => {
    await reference?.dispose();
    await server?.shutdown(2000);
  });

  it("gives a renamed copy without _name_or_path the e5 profile, from the model's own files", async () => {
    const info = await getJson<Record<string, unknown>>(`${server.url}/model-info`);
    assert.equal(info.body.profile, "e5");
    assert.deepEqual(info.body.prefixes, { passage: "passage: ", query: "query: " });
    assert.equal(info.body.max_tokens, 512);
    assert.equal(info.body.pooling, "mean");
    assert.equal(info.body.normalize, true);
    const source = info.body.profile_source as { by: string; detail: string };
    assert.equal(source.by, "architecture");
    assert.match(source.detail, /xlm-roberta of 12 layers × 384 with the XLM-R vocabulary/);
  });

  it("ranks the right Korean passage first for at least 90% of the queries", async () => {
    e5 = await retrieval(server, "korean");
    console.log(
      `# e5 top-1: ${(e5.accuracy * 100).toFixed(1)}%${e5.misses.map((m) => `\n#   miss: ${m}`).join("")}`,
    );
    assert.ok(e5.accuracy >= 0.9, `top-1 ${e5.accuracy}: ${e5.misses.join("; ")}`);
  });

  it("fed the model 'passage: ' + text on ingest and 'query: ' + text on search, as the tokenizer gives them", () => {
    const passages = traced("passage").map((row) => row.join(","));
    for (const { text } of KOREAN_PASSAGES) {
      const ids = tokenizer.encode(`passage: ${text}`);
      assert.equal(ids.slice(0, 3).join(","), tokenizer.encode("passage:").slice(0, 3).join(","));
      assert.ok(passages.includes(ids.join(",")), `the model saw "passage: " + ${text.slice(0, 20)}…`);
      assert.ok(!passages.includes(tokenizer.encode(text).join(",")), "never the bare text");
    }
    const queries = traced("query").map((row) => row.join(","));
    for (const { query } of KOREAN_QUERIES) {
      assert.ok(queries.includes(tokenizer.encode(`query: ${query}`).join(",")), `query: ${query}`);
    }
  });

  it("/v1/embeddings embeds with 'query: ', counted in the 512 tokens, mean-pooled and normalised like transformers.js", async () => {
    const text = KOREAN_QUERIES[0]!.query;
    const long = koreanDocument(2000);
    const answer = await postJson<{ data: Array<{ embedding: number[] }>; usage: { prompt_tokens: number } }>(
      `${server.url}/v1/embeddings`,
      { model: "korean-embedder", input: [text, long], overflow: "truncate" },
    );
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const [short, cut] = answer.body.data.map((d) => d.embedding);
    assert.ok(short && cut);
    assert.ok(Math.abs(Math.hypot(...short) - 1) < 1e-5, "normalised");
    const expected = await embedReference(`query: ${text}`);
    assert.ok(
      maxAbsDiff(short, expected) < 1e-5,
      `differs from the reference by ${maxAbsDiff(short, expected)}`,
    );
    // The comparison can tell: without the prefix the vector is another one.
    assert.ok(maxAbsDiff(short, await embedReference(text)) > 1e-3);

    const full = tokenizer.encode(`query: ${long}`);
    assert.ok(full.length > 512);
    const row = traced("query").find((r) => r.length === 512);
    assert.ok(row, "the long input reached the model as 512 tokens");
    const prefix = tokenizer.encode("query:", { add_special_tokens: false });
    assert.deepEqual(row.slice(0, 1 + prefix.length), [0, ...prefix], "<s> then the prefix, inside the 512");
    assert.deepEqual(row.slice(1, 511), full.slice(1, 511), "the text cut, not the prefix");
    assert.equal(row[511], 2, "</s> kept at the end");
    assert.equal(answer.body.usage.prompt_tokens, tokenizer.encode(`query: ${text}`).length + 512);
  });

  it("scores a stored passage against a query as the reference vectors' cosine", async () => {
    const { query, answer } = KOREAN_QUERIES[5]!;
    const passage = KOREAN_PASSAGES.find((p) => p.id === answer)!;
    const result = await postJson<{ hits: Hit[] }>(`${server.url}/v1/collections/korean/search`, {
      query,
      top_k: 1,
    });
    const expected = dot(
      await embedReference(`query: ${query}`),
      await embedReference(`passage: ${passage.text}`),
    );
    const score = result.body.hits[0]?.score ?? 0;
    assert.ok(Math.abs(score - expected) < 1e-4, `score ${score}, reference ${expected}`);
  });

  it("estimates tokens at or above e5's count for Korean text (queue bound and reservations)", () => {
    for (const text of [...KOREAN_PASSAGES.map((p) => p.text), koreanDocument(4391)]) {
      const tokens = tokenizer.encode(`passage: ${text}`).length;
      const estimate = queueTokenEstimate(text);
      assert.ok(estimate >= tokens, `${estimate} < ${tokens} for ${text.slice(0, 20)}…`);
      assert.ok(estimate <= 3 * tokens, `${estimate} is far above ${tokens}`);
    }
  });

  describe("the English all-MiniLM-L6-v2 on the same set", () => {
    let minilm: HttpServer;
    before(async () => {
      minilm = await startInProcess({ EMBEDDING_MODEL: sharedModelDir("all-MiniLM-L6-v2") });
    });
    after(async () => {
      await minilm?.shutdown(2000);
    });

    it("ranks far fewer right: it reads Hangul as jamo pieces, never trained on Korean", async () => {
      const result = await retrieval(minilm, "korean");
      console.log(
        `# MiniLM top-1: ${(result.accuracy * 100).toFixed(1)}% (e5 ${(e5.accuracy * 100).toFixed(1)}%)`,
      );
      assert.ok(result.accuracy <= 0.5, `MiniLM top-1 ${result.accuracy}`);
      assert.ok(e5.accuracy - result.accuracy >= 0.4, `e5 ${e5.accuracy} vs MiniLM ${result.accuracy}`);
    });
  });
});
