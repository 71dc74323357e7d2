import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { before, describe, it } from "node:test";
import { loadSettings, SettingsError } from "../../src/config/settings.js";
import { planInputs } from "../../src/embedder/remote/input-plan.js";
import { remoteEmbedderOptions } from "../../src/embedder/remote/remote-settings.js";
import {
  ESTIMATE_COUNTER,
  estimateTokens,
  loadTokenizerCounter,
  type TokenCounter,
} from "../../src/embedder/remote/token-counter.js";
import { surelyFits } from "../../src/server/token-limits.js";
import { REPO_ROOT, tempDir, tokenizerDir } from "../helpers/paths.js";

const SCIFACT = readFileSync(resolve(REPO_ROOT, "../shared/datasets/scifact/corpus.jsonl"), "utf8")
  .split("\n")
  .filter((line) => line.trim() !== "")
  .map((line) => {
    const row = JSON.parse(line) as { title: string; text: string };
    return `${row.title} ${row.text}`.trim();
  });

/** Text unlike SciFact: Korean, CJK, emoji, accents, identifiers, number lists, lone punctuation. */
const MIXED = [
  "이 약은 식후 30분에 물과 함께 복용하십시오. 복용 전 의사 또는 약사와 상담하십시오.",
  "日本語のテキスト。薬は食後に服用してください。中文：每日三次，每次一片。😀👍🏽",
  "Ünïcödé àccents: naïve café résumé — “quotes” ‘single’ … • ™ © ®",
  "NCT01234567 rs12345678 BRCA1/2 IL-6 TNF-α p53−/− 5′-UTR Ca2+ 10^-5 M 0x1F3A",
  "HPV 16, 18, 26, 31, 33, 35, 39, 45, 51, 52, 56, 58, 59, 66, 68, 73",
  "3f9a0c7e1b2d4f6a8c0e2f4a6b8d0f1e https://example.com/path?q=abc123&x=y#frag",
  ". . . . , , ; ; ( ) [ ] - - * * # # ! ? / | ~",
];

describe("the conservative token estimate", () => {
  let counters: Array<[string, TokenCounter]>;
  before(async () => {
    counters = [
      ["WordPiece (all-MiniLM-L6-v2)", await loadTokenizerCounter(tokenizerDir(), tempDir("tok"))],
      [
        "SentencePiece (multilingual-e5)",
        await loadTokenizerCounter(
          resolve(REPO_ROOT, "../shared/models/multilingual-e5-small-q4"),
          tempDir("tok"),
        ),
      ],
    ];
  });

  it("is at least the real count of SciFact documents and of mixed-script text", () => {
    // transformers.js runs SentencePiece about 60× slower than WordPiece: every 40th document for it.
    const samples = [SCIFACT, SCIFACT.filter((_, i) => i % 40 === 0)];
    counters.forEach(([name, counter], k) => {
      const texts = [...samples[k]!, ...MIXED];
      const under = texts.filter((text) => ESTIMATE_COUNTER.count(text) < counter.count(text));
      assert.deepEqual(under.slice(0, 3), [], `${name}: estimated below the real count`);
    });
  });

  it("over-counts English prose by about 2×, not by bytes", () => {
    const [, minilm] = counters[0]!;
    const slice = SCIFACT.slice(0, 500);
    const ratio =
      slice.reduce((sum, text) => sum + estimateTokens(text), 0) /
      slice.reduce((sum, text) => sum + minilm.countPiece(text), 0);
    assert.ok(ratio > 1.5 && ratio < 2.6, `estimate / real = ${ratio.toFixed(2)}`);
  });

  it("keeps within the bound admission relies on to skip counting short texts", () => {
    for (const text of [...SCIFACT.slice(0, 200), ...MIXED]) {
      const prefix = "passage: ";
      const bound = Buffer.byteLength(prefix + text) + 3;
      assert.ok(surelyFits(text, prefix, bound));
      assert.ok(ESTIMATE_COUNTER.count(prefix + text) <= bound, "a text that surely fits, fits");
    }
  });
});

describe("planInputs: prefix and overflow policy before anything is sent", () => {
  const options = { prefix: "passage: ", maxTokens: 64, counter: ESTIMATE_COUNTER };
  const long = Array.from({ length: 120 }, (_, i) => `word${i}`).join(" ");

  it("sends a text that fits whole, with the prefix", async () => {
    const plan = await planInputs(["short text"], undefined, options);
    assert.deepEqual(plan.inputs, [
      { text: "passage: short text", tokens: ESTIMATE_COUNTER.count("passage: short text") },
    ]);
    assert.deepEqual(plan.texts[0], {
      inputs: [0],
      windows: null,
      tokens: plan.inputs[0]!.tokens,
      truncatedTokens: 0,
    });
  });

  it("truncates at a word boundary to the limit (the default policy) and records what was dropped", async () => {
    const plan = await planInputs([long], undefined, options);
    const [input] = plan.inputs;
    const full = ESTIMATE_COUNTER.count(`passage: ${long}`);
    assert.ok(input!.tokens <= 64);
    assert.ok(
      `passage: ${long}`.startsWith(input!.text) && /\d$/.test(input!.text),
      "whole words from the start",
    );
    assert.equal(plan.texts[0]!.truncatedTokens, full - input!.tokens);
  });

  it("splits into windows that fit, each its own input, counting the whole text", async () => {
    const plan = await planInputs(
      [long, "tiny"],
      [
        { policy: "split", overlapTokens: 8 },
        { policy: "split", overlapTokens: 8 },
      ],
      options,
    );
    const [split, tiny] = plan.texts;
    assert.ok(split!.windows && split!.windows.length >= 3);
    assert.equal(split!.inputs.length, split!.windows.length);
    assert.equal(split!.tokens, ESTIMATE_COUNTER.count(`passage: ${long}`));
    split!.windows.forEach((window, k) => {
      assert.ok(long.includes(window.text));
      assert.equal(plan.inputs[split!.inputs[k]!]!.text, `passage: ${window.text}`);
      assert.ok(window.tokens <= 64);
    });
    assert.deepEqual(tiny!.inputs, [plan.inputs.length - 1]);
  });

  it("refuses a prefix that leaves no room for text", async () => {
    await assert.rejects(planInputs([long], undefined, { ...options, prefix: "x ".repeat(80) }), RangeError);
  });
});

describe("EMBEDDER=remote settings", () => {
  const base = { EMBEDDER: "remote", EMBEDDER_URL: "http://engine:8000", EMBEDDER_MODEL: "m" };

  it("take EMBEDDING_MODEL as the tokenizer only when it is given", () => {
    assert.equal(
      remoteEmbedderOptions(loadSettings({ ...base, EMBEDDING_MODEL: "/models/x" })).tokenizer,
      "/models/x",
    );
    assert.equal(
      remoteEmbedderOptions(loadSettings({ ...base, EMBEDDER_MAX_TOKENS: "8191" })).tokenizer,
      null,
    );
    assert.equal(loadSettings({}).embeddingModelSet, false);
    assert.equal(loadSettings({}, { embeddingModel: "x" }).embeddingModelSet, true);
  });

  it("refuse what cannot work, naming the settings to fix", () => {
    const problems = (env: Record<string, string>) => {
      try {
        remoteEmbedderOptions(loadSettings(env));
        return "";
      } catch (error) {
        assert.ok(error instanceof SettingsError);
        return error.message;
      }
    };
    assert.match(
      problems({ EMBEDDER: "remote", EMBEDDER_MAX_TOKENS: "512", EMBEDDER_MODEL: "m" }),
      /needs EMBEDDER_URL/,
    );
    assert.match(
      problems({ ...base, EMBEDDER_URL: "ftp://x", EMBEDDER_MAX_TOKENS: "512" }),
      /EMBEDDER_URL must be an http/,
    );
    assert.match(
      problems({ ...base, EMBEDDER_MODEL: "", EMBEDDER_MAX_TOKENS: "512" }),
      /EMBEDDER_PROTOCOL=openai needs EMBEDDER_MODEL/,
    );
    assert.equal(
      problems({ ...base, EMBEDDER_MODEL: "", EMBEDDER_PROTOCOL: "tei", EMBEDDER_MAX_TOKENS: "512" }),
      "",
    );
    assert.match(problems(base), /set EMBEDDING_MODEL .* or declare EMBEDDER_MAX_TOKENS/);
    assert.throws(() => loadSettings({ EMBEDDER_PROTOCOL: "grpc" }), /EMBEDDER_PROTOCOL/);
  });
});
