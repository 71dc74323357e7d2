import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { AutoTokenizer, env } from "@huggingface/transformers";
import { REPO_ROOT, tempDir, testModelDir } from "../helpers/paths.js";
import { writeScifactSlice } from "../helpers/scifact-slice.js";

const FIRST_DOCS = 300;
const QUERIES = 20;

describe("npm run eval on a SciFact slice (random-weight model: plumbing, not score)", () => {
  let dir: string;
  let slice: { docs: number; queries: string[] };
  let result: Record<string, unknown>;
  let stdout = "";
  let stderr = "";
  let exitCode: number | null = null;

  before(async () => {
    dir = tempDir("eval");
    slice = writeScifactSlice(join(dir, "scifact-slice"), { firstDocs: FIRST_DOCS, queries: QUERIES });
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "src/eval/main.ts",
        "--dataset",
        join(dir, "scifact-slice"),
        "--model",
        testModelDir(),
        "--json",
        join(dir, "eval.json"),
      ],
      { cwd: REPO_ROOT, env: { ...process.env, INIT_CWD: REPO_ROOT }, stdio: ["ignore", "pipe", "pipe"] },
    );
    child.stdout.on("data", (data: Buffer) => {
      stdout += data.toString();
    });
    child.stderr.on("data", (data: Buffer) => {
      stderr += data.toString();
    });
    [exitCode] = (await once(child, "exit")) as [number | null];
    if (exitCode === 0)
      result = JSON.parse(readFileSync(join(dir, "eval.json"), "utf8")) as Record<string, unknown>;
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it("exits 0 and prints the table", () => {
    assert.equal(exitCode, 0, `eval failed:\n${stderr}`);
    assert.match(stdout, /nDCG@10\s+\d\.\d{5}/);
    assert.match(stdout, /Recall@100\s+\d\.\d{5}/);
  });

  it("ingested every document exactly once", () => {
    assert.ok(slice.docs > FIRST_DOCS, "the slice adds the relevant documents beyond the first 300");
    assert.equal(result.docs, slice.docs);
    assert.equal(result.stored_points, slice.docs);
    assert.equal(result.skipped_empty_docs, 0);
  });

  it("reports as truncated exactly the documents over the model's 256 tokens", async () => {
    env.allowLocalModels = true;
    env.allowRemoteModels = false;
    env.localModelPath = dirname(testModelDir());
    const tokenizer = await AutoTokenizer.from_pretrained(basename(testModelDir()));
    const corpus = readFileSync(join(dir, "scifact-slice/corpus.jsonl"), "utf8").split("\n").filter(Boolean);
    let over = 0;
    for (const line of corpus) {
      const doc = JSON.parse(line) as { title: string; text: string };
      const ids = tokenizer.encode(`${doc.title} ${doc.text}`.trim());
      if (ids.length > 256) over += 1;
    }
    assert.ok(over > 0, "the slice has documents over the limit");
    assert.equal(result.truncated_docs, over);
  });

  it("answered every test query with up to 100 hits", () => {
    assert.equal(result.queries, QUERIES);
    assert.equal(result.queries_missing_hits, 0);
    const perQuery = result.per_query as Array<{ query_id: string; hits: number; latency_ms: number }>;
    assert.deepEqual(
      perQuery.map((q) => q.query_id),
      slice.queries,
    );
    for (const q of perQuery) {
      assert.ok(q.hits > 0 && q.hits <= 100, `query ${q.query_id}: ${q.hits} hits`);
      assert.ok(q.latency_ms > 0);
    }
  });

  it("writes every field, metrics in [0, 1]", () => {
    for (const key of [
      "dataset",
      "model",
      "docs",
      "queries",
      "ndcg_at_10",
      "recall_at_100",
      "ingest_seconds",
      "query_p50_ms",
      "query_p95_ms",
      "model_info",
    ]) {
      assert.ok(key in result, `missing ${key}`);
    }
    assert.equal(result.dataset, "scifact-slice");
    assert.equal(result.model, testModelDir());
    for (const key of ["ndcg_at_10", "recall_at_100"]) {
      const value = result[key] as number;
      assert.ok(typeof value === "number" && value >= 0 && value <= 1, `${key} = ${value}`);
    }
    assert.ok((result.ingest_seconds as number) > 0);
    assert.ok((result.query_p50_ms as number) > 0);
    const info = result.model_info as { profile: string; max_tokens: number; prefixes: { query: string } };
    assert.equal(info.max_tokens, 256);
    assert.equal(info.prefixes.query, "");
  });
});
