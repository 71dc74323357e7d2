import assert from "node:assert/strict";
import { basename, dirname } from "node:path";
import { before, describe, it } from "node:test";
import { AutoTokenizer, env, type PreTrainedTokenizer } from "@huggingface/transformers";
import { type SpecialTokenLayout, specialTokenLayout } from "../../src/embedder/encoding.js";
import { embedInputs, splitText } from "../../src/embedder/text-inputs.js";
import { sharedModelDir, testModelDir } from "../helpers/paths.js";

/**
 * The text → model input step with real tokenizers and no ONNX session: what the embedding process
 * feeds the model, checked without loading one.
 */
async function tokenizer(
  directory: string,
): Promise<{ tokenizer: PreTrainedTokenizer; layout: SpecialTokenLayout }> {
  env.allowLocalModels = true;
  env.allowRemoteModels = false;
  env.localModelPath = dirname(directory);
  const loaded = await AutoTokenizer.from_pretrained(basename(directory));
  const layout = specialTokenLayout(
    loaded.encode("hello world"),
    loaded.encode("hello world", { add_special_tokens: false }),
  );
  return { tokenizer: loaded, layout };
}

/** A lone half of a surrogate pair at either end of a window: the cutter split a character. */
function splitsSurrogatePair(text: string): boolean {
  return /^[\uDC00-\uDFFF]|[\uD800-\uDBFF]$/.test(text);
}

/** Each window found in order in the text, each starting after the previous one starts. */
function assertInOrderSubstrings(text: string, windows: readonly { text: string }[]): void {
  let from = 0;
  for (const [k, window] of windows.entries()) {
    const at = text.indexOf(window.text, from);
    assert.ok(at >= 0, `window ${k} is not a substring of the text after window ${k - 1}`);
    from = at + 1;
  }
  assert.ok(text.endsWith(windows.at(-1)?.text ?? ""), "the last window ends the text");
}

describe("text inputs with multilingual-e5's tokenizer (emoji are tokens of their own)", () => {
  let e5: Awaited<ReturnType<typeof tokenizer>>;
  before(async () => {
    e5 = await tokenizer(sharedModelDir("multilingual-e5-small-q4"));
  });

  it("cuts a run of astral characters by characters, never inside a surrogate pair", () => {
    // Every character is a surrogate pair and a token of its own: 600 of them, no whitespace, is one
    // word far over a 64-token window, so the cutter cuts it, and half of its candidate cut points
    // fall inside a pair. CJK Extension B ideographs mixed in make the pieces uneven.
    const emoji = ["😀", "🎉", "🚀", "🌍", "🧬", "💊", "🩺", "🦀"];
    const extensionB = (i: number) => String.fromCodePoint(0x20000 + ((i * 7919) % 0xa6d0));
    const run = Array.from({ length: 600 }, (_, i) =>
      i % 5 === 4 ? extensionB(i) : emoji[i % emoji.length],
    ).join("");
    const limits = { maxTokens: 64, layout: e5.layout };
    const full = e5.tokenizer.encode(`passage: ${run}`).length;
    assert.ok(full > 4 * limits.maxTokens, `the run is ${full} tokens`);

    const windows = splitText(e5.tokenizer, limits, run, "passage: ", 16);
    assert.ok(windows && windows.length >= 5, `${windows?.length} windows`);
    for (const [k, window] of windows.entries()) {
      assert.ok(!splitsSurrogatePair(window.text), `window ${k} cuts a surrogate pair`);
      assert.ok(window.ids.length <= limits.maxTokens, `window ${k}: ${window.ids.length} tokens`);
    }
    assertInOrderSubstrings(run, windows);
  });

  it("embedInputs splits only the texts whose spec says split and that are over the limit", () => {
    const limits = { maxTokens: 32, layout: e5.layout };
    const long = Array.from({ length: 80 }, (_, i) => `word${i}`).join(" ");
    const inputs = embedInputs(e5.tokenizer, limits, ["short text", long, long], "passage: ", [
      { policy: "split", overlapTokens: 4 },
      { policy: "split", overlapTokens: 4 },
      { policy: "truncate", overlapTokens: 4 },
    ]);
    assert.equal(inputs.windows[0], null);
    assert.equal(inputs.windows[2], null);
    const windows = inputs.windows[1];
    assert.ok(windows && windows.length >= 2);
    // Window 0 is the text's own row; the others follow the three texts' rows, in order.
    assert.deepEqual(
      windows.map((w) => w.row),
      windows.map((_, k) => (k === 0 ? 1 : 2 + k)),
    );
    assert.equal(inputs.rows.length, 3 + windows.length - 1);
    for (const row of inputs.rows) assert.ok(row.length <= limits.maxTokens);
    assert.equal(inputs.truncatedTokens[1], 0);
    assert.ok((inputs.truncatedTokens[2] ?? 0) > 0, "the truncated copy reports its cut");
    assert.equal(inputs.tokens[2], limits.maxTokens);
  });
});

describe("text inputs with MiniLM's (BERT) tokenizer", () => {
  let bert: Awaited<ReturnType<typeof tokenizer>>;
  before(async () => {
    bert = await tokenizer(testModelDir());
  });

  it("truncates to the limit and keeps the closing [SEP]", () => {
    const limits = { maxTokens: 16, layout: bert.layout };
    const text = Array.from({ length: 40 }, (_, i) => `protein${i % 3}`).join(" ");
    const whole = bert.tokenizer.encode(text);
    const inputs = embedInputs(bert.tokenizer, limits, [text], "");
    const [row = []] = inputs.rows;
    assert.equal(row.length, 16);
    assert.equal(row.at(-1), whole.at(-1), "[SEP] closes the truncated row");
    assert.deepEqual(row.slice(0, 15), whole.slice(0, 15));
    assert.deepEqual(inputs.truncatedTokens, [whole.length - 16]);
  });

  it("rejects an overflow list that does not match the texts", () => {
    assert.throws(
      () => embedInputs(bert.tokenizer, { maxTokens: 16, layout: bert.layout }, ["a", "b"], "", []),
      /overflow has 0 entries for 2 texts/,
    );
  });
});
