import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EmbedJob, type EmbedModel } from "../../src/embedder/embed-job.js";

/**
 * EmbedJob without a model: a tokenizer that makes one token per word (id = 100 + word length, [CLS]=1
 * and [SEP]=2 around), and sessions whose "vector" of a row is [its token count, its first word's id],
 * so every vector says which row it was computed from.
 */
const CLS = 1;
const SEP = 2;
const tokenizer = {
  encode(text: string, options?: { add_special_tokens?: boolean }): number[] {
    const ids = text
      .split(/\s+/)
      .filter(Boolean)
      .map((word) => 100 + word.length);
    return options?.add_special_tokens === false ? ids : [CLS, ...ids, SEP];
  },
};

function fakeModel(options: { maxBatchSize: number; maxTokens?: number }) {
  const batches: number[][][] = [];
  const model: EmbedModel = {
    tokenizer,
    profile: {
      name: "fake",
      passagePrefix: "",
      queryPrefix: "query: ",
      pooling: "mean",
      normalize: true,
      maxTokens: options.maxTokens ?? 64,
    },
    layout: { prefixLength: 1, suffixLength: 1 },
    padTokenId: 0,
    dimension: 2,
    options: { maxBatchTokens: 10_000, maxBatchSize: options.maxBatchSize },
    sessions: {
      async runRows(rows) {
        batches.push(rows.map((row) => [...row]));
        return Float32Array.from(rows.flatMap((row) => [row.length, row[1] ?? 0]));
      },
    },
  };
  return { model, batches };
}

async function runAll(job: EmbedJob): Promise<void> {
  for (let i = 0; i < job.batchCount; i++) await job.runBatch(i);
}

const words = (n: number, word = "ab") => Array.from({ length: n }, () => word).join(" ");

describe("EmbedJob", () => {
  it("runs texts in batches sorted by length and puts each vector back at its text's row", async () => {
    const { model, batches } = fakeModel({ maxBatchSize: 2 });
    const texts = [words(5), words(1, "abcdef"), words(9), words(3, "abc"), words(2)];
    const job = EmbedJob.plan(model, { type: "embed", id: 7, texts, kind: "passage" });
    assert.equal(job.batchCount, 3);
    await runAll(job);
    assert.equal(batches.length, 3);
    const { id, vectors, tokens, truncatedTokens, windows } = job.response();
    assert.equal(id, 7);
    assert.deepEqual(tokens, [7, 3, 11, 5, 4]);
    assert.deepEqual(truncatedTokens, [0, 0, 0, 0, 0]);
    assert.deepEqual(windows, [null, null, null, null, null]);
    const rows = Array.from({ length: texts.length }, (_, i) => [...vectors.subarray(i * 2, i * 2 + 2)]);
    assert.deepEqual(rows, [
      [7, 102],
      [3, 106],
      [11, 102],
      [5, 103],
      [4, 102],
    ]);
  });

  it("gives a split text's further windows rows after the texts, each with its own vector", async () => {
    const { model } = fakeModel({ maxBatchSize: 4, maxTokens: 8 });
    const long = Array.from({ length: 20 }, (_, i) => "x".repeat(1 + (i % 5))).join(" ");
    const job = EmbedJob.plan(model, {
      type: "embed",
      id: 1,
      texts: ["short one", long],
      kind: "passage",
      overflow: [
        { policy: "split", overlapTokens: 0 },
        { policy: "split", overlapTokens: 0 },
      ],
    });
    await runAll(job);
    const { vectors, windows } = job.response();
    const split = windows[1];
    assert.ok(split && split.length >= 3, `${split?.length} windows`);
    assert.equal(windows[0], null);
    assert.equal(split[0]?.row, 1);
    split.forEach((window, k) => {
      if (k > 0) assert.equal(window.row, 1 + k);
      // The vector at the window's row was computed from that window: its token count and first word.
      const first = window.text.split(" ")[0] ?? "";
      assert.deepEqual(
        [...vectors.subarray(window.row * 2, window.row * 2 + 2)],
        [window.tokens, 100 + first.length],
      );
    });
    assert.equal(vectors.length, (2 + split.length - 1) * 2);
  });

  it("truncates by default, keeping [SEP], and prefixes queries", async () => {
    const { model, batches } = fakeModel({ maxBatchSize: 4, maxTokens: 6 });
    const job = EmbedJob.plan(model, { type: "embed", id: 1, texts: [words(10)], kind: "query" });
    await runAll(job);
    // "query:" is one more word (id 106), then the text; 12 + 1 tokens cut to 6.
    assert.deepEqual(batches, [[[CLS, 106, 102, 102, 102, SEP]]]);
    assert.deepEqual(job.response().truncatedTokens, [7]);
  });

  it("a request without texts has no batches", () => {
    const { model } = fakeModel({ maxBatchSize: 4 });
    assert.equal(EmbedJob.plan(model, { type: "embed", id: 1, texts: [], kind: "passage" }).batchCount, 0);
  });
});
