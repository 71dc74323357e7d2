import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { ProcessingError } from "../../src/domain/errors.js";
import { type EmbedderOptions, WorkerEmbedder } from "../../src/embedder/worker-embedder.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const modelDir = process.env.TEST_MODEL_DIR ?? resolve(repoRoot, "../shared/models/test-random-minilm-l6");

function options(overrides: Partial<EmbedderOptions> = {}): EmbedderOptions {
  return {
    model: modelDir,
    dtype: "q8",
    threads: 2,
    sessions: 2,
    maxBatchTokens: 8192,
    maxBatchSize: 16,
    cacheDir: join(tmpdir(), "rag-embed-test-cache"),
    profileOverrides: {},
    ...overrides,
  };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return max;
}

function norm(v: Float32Array): number {
  return Math.sqrt(v.reduce((sum, x) => sum + x * x, 0));
}

function words(count: number, word = "protein"): string {
  return Array.from({ length: count }, () => word).join(" ");
}

/** Unique sentences, so every window can be located in the text. */
function englishText(sentences: number): string {
  return Array.from(
    { length: sentences },
    (_, i) =>
      `Sentence ${i}: in cohort ${i * 7}, patients  treated with Compound-${i} showed\tbetter outcomes than controls.`,
  ).join(i18nBreak);
}
const i18nBreak = " \n";

/** Locates each window in order and checks they are in-order, overlapping substrings covering the text. */
function checkWindowsCover(text: string, windows: { text: string }[], overlapping: boolean): void {
  let previousStart = -1;
  let previousEnd = 0;
  windows.forEach((window, k) => {
    const start = text.indexOf(window.text, previousStart + 1);
    assert.ok(start >= 0, `window ${k} is not a substring after window ${k - 1}`);
    assert.equal(window.text, window.text.trim(), `window ${k} has surrounding whitespace`);
    if (k === 0) {
      assert.equal(text.slice(0, start).trim(), "", "text before the first window");
    } else if (overlapping) {
      assert.ok(start < previousEnd, `window ${k} does not overlap window ${k - 1}`);
    } else {
      assert.equal(text.slice(previousEnd, start).trim(), "", `gap before window ${k}`);
    }
    assert.ok(start + window.text.length > previousEnd, `window ${k} adds nothing`);
    previousStart = start;
    previousEnd = start + window.text.length;
  });
  // The non-overlapping parts concatenated give the whole text (up to surrounding whitespace).
  assert.equal(text.slice(previousEnd).trim(), "", "text after the last window");
}

const MIXED = [
  "Aspirin reduces the risk of heart attack.",
  words(120, "the"),
  "short",
  `${words(40, "cell")} divides under stress conditions observed in vitro`,
  words(230, "gene"),
  "Vitamin D deficiency is associated with bone fractures in older adults.",
];

describe("WorkerEmbedder with the local test model", () => {
  const embedder = new WorkerEmbedder(options());

  before(async () => {
    await embedder.load();
  });
  after(async () => {
    await embedder.close();
  });

  it("describes the model it loaded", () => {
    const info = embedder.info();
    assert.equal(info.id, modelDir);
    assert.equal(info.dimension, 384);
    assert.equal(info.profile, "minilm");
    assert.equal(info.maxTokens, 256);
    assert.equal(info.pooling, "mean");
    assert.equal(info.normalize, true);
    assert.equal(info.dtype, "q8");
    assert.deepEqual(info.prefixes, { passage: "", query: "" });
  });

  it("loads once however often it is asked", async () => {
    const [a, b] = await Promise.all([embedder.load(), embedder.load()]);
    assert.equal(a, b);
  });

  it("answers an empty request without the model", async () => {
    assert.deepEqual(await embedder.embed([], "passage"), {
      vectors: [],
      tokens: [],
      truncatedTokens: [],
      windows: [],
    });
    assert.deepEqual(await embedder.countTokens([], "passage"), []);
  });

  it("returns unit-norm 384-d vectors", async () => {
    const { vectors, tokens, truncatedTokens } = await embedder.embed(MIXED, "passage");
    assert.equal(vectors.length, MIXED.length);
    for (const v of vectors) {
      assert.equal(v.length, 384);
      assert.ok(Math.abs(norm(v) - 1) < 1e-5, `norm ${norm(v)}`);
    }
    assert.equal(tokens[2], 3); // [CLS] short [SEP]
    assert.deepEqual(truncatedTokens, [0, 0, 0, 0, 0, 0]);
  });

  it("gives a text the same vector alone and inside a batch of identical rows", async () => {
    const text = MIXED[0] ?? "";
    const alone = await embedder.embed([text], "passage");
    const triple = await embedder.embed([text, text, text], "passage");
    for (const v of triple.vectors) {
      const [a] = alone.vectors;
      assert.ok(a);
      assert.ok(maxAbsDiff(a, v) < 1e-6, `diff ${maxAbsDiff(a, v)}`);
    }
  });

  it("gives a text nearly the same vector alone and padded inside a mixed batch", async () => {
    // Not bit-exact with an int8 model: ORT quantizes activations dynamically with one scale per tensor,
    // so batch companions shift every row slightly (worst seen on SciFact: 3e-4; fp32 would be exact).
    // The tolerance is still far below what a padding bug does (pads in the mean: ~0.12) or what a
    // different text gives (~0.05).
    const alone = await Promise.all(MIXED.map((text) => embedder.embed([text], "passage")));
    const batched = await embedder.embed(MIXED, "passage");
    alone.forEach((single, i) => {
      const a = single.vectors[0];
      const b = batched.vectors[i];
      assert.ok(a && b);
      assert.ok(maxAbsDiff(a, b) < 2e-3, `text ${i}: diff ${maxAbsDiff(a, b)}`);
      assert.equal(single.tokens[0], batched.tokens[i]);
    });
  });

  it("keeps input order for a shuffled mixed-length batch split over several batches", async () => {
    // One text per model batch makes results exact, so any reordering shows up.
    const oneByOne = new WorkerEmbedder(options({ maxBatchSize: 1 }));
    try {
      const singles = await Promise.all(MIXED.map((text) => embedder.embed([text], "passage")));
      const order = [4, 2, 0, 5, 1, 3];
      const shuffled = order.map((i) => MIXED[i] ?? "");
      const result = await oneByOne.embed(shuffled, "passage");
      order.forEach((original, position) => {
        const expected = singles[original]?.vectors[0];
        const actual = result.vectors[position];
        assert.ok(expected && actual);
        assert.ok(
          maxAbsDiff(expected, actual) < 1e-6,
          `position ${position}: diff ${maxAbsDiff(expected, actual)}`,
        );
        assert.equal(result.tokens[position], singles[original]?.tokens[0]);
      });
    } finally {
      await oneByOne.close();
    }
  });

  it("truncates a 2,000-token text to 256 tokens and reports the cut", async () => {
    // "protein" is one token: 1,998 words + [CLS] + [SEP] = 2,000.
    const long = words(1998);
    const { tokens, truncatedTokens } = await embedder.embed([long, "short"], "passage");
    assert.equal(tokens[0], 256);
    assert.equal(truncatedTokens[0], 2000 - 256);
    assert.equal(truncatedTokens[1], 0);
    const { vectors } = await embedder.embed([long], "passage");
    // Truncation keeps [SEP]: the vector equals that of the text cut to 254 words (both run alone).
    const cut = await embedder.embed([words(254)], "passage");
    assert.equal(cut.tokens[0], 256);
    assert.equal(cut.truncatedTokens[0], 0);
    const [a] = vectors;
    const [b] = cut.vectors;
    assert.ok(a && b);
    assert.ok(maxAbsDiff(a, b) < 1e-4, `diff ${maxAbsDiff(a, b)}`);
  });

  it("splits a 2,000-token text into overlapping windows that fit", async () => {
    const text = englishText(95);
    const [full = 0] = await embedder.countTokens([text], "passage");
    assert.ok(full > 1800 && full < 2400, `full ${full}`);
    const overlap = 32;
    const result = await embedder.embed([text, "short"], "passage", [
      { policy: "split", overlapTokens: overlap },
      { policy: "split", overlapTokens: overlap },
    ]);
    const windows = result.windows[0];
    assert.ok(windows);
    const budget = 256 - 2;
    const expected = Math.ceil((full - 2 - overlap) / (budget - overlap));
    assert.ok(Math.abs(windows.length - expected) <= 1, `${windows.length} windows, expected ~${expected}`);
    const counts = await embedder.countTokens(
      windows.map((w) => w.text),
      "passage",
    );
    windows.forEach((w, k) => {
      assert.ok((counts[k] ?? 0) <= 256, `window ${k}: ${counts[k]} tokens`);
      assert.equal(w.tokens, counts[k]);
      assert.equal(w.vector.length, 384);
      assert.ok(Math.abs(norm(w.vector) - 1) < 1e-5);
    });
    checkWindowsCover(text, windows, true);
    assert.equal(result.tokens[0], full);
    assert.equal(result.truncatedTokens[0], 0);
    assert.deepEqual(result.vectors[0], windows[0]?.vector);
    // A split text that fits is embedded as usual.
    assert.equal(result.windows[1], null);
    assert.equal(result.tokens[1], 3);

    // A window embeds like the same text on its own.
    const second = windows[1];
    assert.ok(second);
    const alone = await embedder.embed([second.text], "passage");
    const [a] = alone.vectors;
    assert.ok(a);
    assert.ok(maxAbsDiff(a, second.vector) < 2e-3, `diff ${maxAbsDiff(a, second.vector)}`);

    const truncated = await embedder.embed([text], "passage");
    assert.deepEqual(truncated.windows, [null]);
    assert.equal(truncated.tokens[0], 256);
    assert.equal(truncated.truncatedTokens[0], full - 256);
  });

  it("counts tokens exactly as embed reports them", async () => {
    const short = "Aspirin reduces the risk of heart attack.";
    const long = englishText(40);
    const [shortCount, longCount = 0] = await embedder.countTokens([short, long], "passage");
    const { tokens } = await embedder.embed([short], "passage");
    assert.equal(shortCount, tokens[0]);
    assert.ok(longCount > 256, `long ${longCount}`);
    const { truncatedTokens } = await embedder.embed([long], "passage");
    assert.equal(truncatedTokens[0], longCount - 256);
  });

  it("splits a long run without spaces by characters, without hanging", async () => {
    // Each CJK ideograph is its own token for this (BERT) tokenizer: 3,000 of them exceed the limit.
    // Not periodic, so every window can be located in the text.
    const ideographs = Array.from({ length: 3000 }, (_, i) =>
      String.fromCharCode(0x4e00 + ((i * 7919) % 20000)),
    ).join("");
    const [full = 0] = await embedder.countTokens([ideographs], "passage");
    assert.ok(full > 256, `full ${full}`);
    // Hangul is not split per character by BERT: a word over 100 characters becomes one [UNK], so
    // 3,000 syllables without spaces fit, and a split text that fits keeps no windows.
    const hangul = "가나다라마바사아자차카타파하".repeat(215).slice(0, 3000);
    // Surrogate pairs: BERT makes a run of astral characters one [UNK], so the cutter never runs on
    // them here; test/unit/text-inputs.test.ts cuts an emoji run with e5's tokenizer instead.
    const result = await embedder.embed([ideographs, hangul], "passage", [
      { policy: "split", overlapTokens: 16 },
      { policy: "split", overlapTokens: 16 },
    ]);
    const windows = result.windows[0];
    assert.ok(windows && windows.length >= 12, `${windows?.length} windows`);
    const counts = await embedder.countTokens(
      windows.map((w) => w.text),
      "passage",
    );
    for (const count of counts) assert.ok(count <= 256, `window of ${count} tokens`);
    checkWindowsCover(ideographs, windows, true);

    const [hangulCount = 0] = await embedder.countTokens([hangul], "passage");
    if (hangulCount > 256) assert.ok(result.windows[1]);
    else assert.equal(result.windows[1], null);
  });

  it("runs a query embed before a queued passage embed of many texts", async () => {
    const texts = Array.from({ length: 400 }, (_, i) => MIXED[i % MIXED.length] ?? "");
    const order: string[] = [];
    const passage = embedder.embed(texts, "passage").then((r) => {
      order.push("passage");
      return r;
    });
    const query = embedder.embed(["does aspirin prevent heart attacks"], "query").then((r) => {
      order.push("query");
      return r;
    });
    const count = embedder.countTokens(["a count"], "query").then((r) => {
      order.push("count");
      return r;
    });
    const [p, q] = await Promise.all([passage, query, count]);
    // Counts need only the tokenizer, so they are answered at once, not after a forward pass.
    assert.deepEqual(order, ["count", "query", "passage"]);
    assert.equal(p.vectors.length, 400);
    assert.equal(q.vectors.length, 1);
    // Interleaving did not mix up rows: row i still is text i.
    const single = await embedder.embed([texts[1] ?? ""], "passage");
    const [a] = single.vectors;
    assert.ok(a && p.vectors[1]);
    assert.ok(maxAbsDiff(a, p.vectors[1]) < 2e-3);
  });

  it("a large query request (as /v1/embeddings sends) does not hold back an earlier passage request", async () => {
    const order: string[] = [];
    const passageTexts = Array.from({ length: 64 }, (_, i) => `${MIXED[i % MIXED.length] ?? ""} ${i}`);
    const queryTexts = Array.from({ length: 480 }, (_, i) => `query ${i} ${MIXED[i % 3] ?? ""}`);
    const passage = embedder.embed(passageTexts, "passage").then((r) => {
      order.push("passage");
      return r;
    });
    const query = embedder.embed(queryTexts, "query").then((r) => {
      order.push("query");
      return r;
    });
    const [p, q] = await Promise.all([passage, query]);
    // 4 passage batches take turns with 30 query batches, so the passage request ends long before.
    assert.deepEqual(order, ["passage", "query"]);
    assert.equal(p.vectors.length, 64);
    assert.equal(q.vectors.length, 480);
  });

  it("applies a query prefix from the overrides", async () => {
    const e5ish = new WorkerEmbedder(
      options({ profileOverrides: { passagePrefix: "passage: ", queryPrefix: "query: " } }),
    );
    try {
      const info = await e5ish.load();
      assert.deepEqual(info.prefixes, { passage: "passage: ", query: "query: " });
      const text = "does aspirin prevent heart attacks";
      const plain = await embedder.embed([text], "query");
      const query = await e5ish.embed([text], "query");
      const passage = await e5ish.embed([text], "passage");
      // "query: " is two tokens ("query", ":").
      assert.equal(query.tokens[0], (plain.tokens[0] ?? 0) + 2);
      const [p] = plain.vectors;
      const [q] = query.vectors;
      const [s] = passage.vectors;
      assert.ok(p && q && s);
      assert.ok(maxAbsDiff(p, q) > 1e-3);
      assert.ok(maxAbsDiff(q, s) > 1e-3);

      // Split windows still fit with the passage prefix ("passage: " is two tokens) counted.
      const long = englishText(60);
      const split = await e5ish.embed([long], "passage", [{ policy: "split", overlapTokens: 32 }]);
      const windows = split.windows[0];
      assert.ok(windows && windows.length >= 2);
      const counts = await e5ish.countTokens(
        windows.map((w) => w.text),
        "passage",
      );
      windows.forEach((w, k) => {
        assert.ok((counts[k] ?? 0) <= 256, `window ${k}: ${counts[k]} tokens`);
        assert.equal(w.tokens, counts[k]);
        assert.ok(!w.text.startsWith("passage:"));
      });
      const [withPrefix = 0] = await e5ish.countTokens([long], "passage");
      const [without = 0] = await embedder.countTokens([long], "passage");
      assert.equal(withPrefix, without + 2);
      checkWindowsCover(long, windows, true);
    } finally {
      await e5ish.close();
    }
  });

  it("rejects in-flight requests with a retryable error when the worker dies, then recovers", async () => {
    const texts = Array.from({ length: 64 }, (_, i) => `${words(200, "kinase")} ${i}`);
    const before = await embedder.embed(["recovery check"], "passage");
    const inFlight = embedder.embed(texts, "passage");
    // Let the request reach the worker before killing it.
    await new Promise((r) => setTimeout(r, 50));
    await embedder.terminateWorkerForTest();
    await assert.rejects(inFlight, (error: unknown) => {
      assert.ok(error instanceof ProcessingError);
      assert.equal(error.retryable, true);
      return true;
    });
    const after = await embedder.embed(["recovery check"], "passage");
    const [a] = before.vectors;
    const [b] = after.vectors;
    assert.ok(a && b);
    assert.ok(maxAbsDiff(a, b) < 1e-6);
  });
});

describe("WorkerEmbedder load failures", () => {
  it("rejects a model directory that does not exist", async () => {
    const embedder = new WorkerEmbedder(options({ model: join(tmpdir(), "no-such-model-dir-4821") }));
    await assert.rejects(embedder.load(), /model directory not found: .*no-such-model-dir-4821/);
    await embedder.close();
  });

  it("names the model and the missing file for an incomplete directory", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rag-embed-model-"));
    writeFileSync(join(dir, "config.json"), "{}");
    const embedder = new WorkerEmbedder(options({ model: dir }));
    try {
      await assert.rejects(embedder.load(), (error: unknown) => {
        assert.ok(error instanceof ProcessingError);
        assert.equal(error.retryable, false);
        assert.match(error.message, new RegExp(`${dir}.*missing tokenizer\\.json`));
        return true;
      });
      // Nothing was loaded, so there is nothing to describe.
      assert.throws(() => embedder.info(), /not loaded/);
    } finally {
      await embedder.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("rejects an unknown dtype with the supported ones", async () => {
    const embedder = new WorkerEmbedder(options({ dtype: "int3" }));
    try {
      await assert.rejects(embedder.load(), /unsupported dtype "int3".*q8/);
    } finally {
      await embedder.close();
    }
  });
});
