import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  clampOverlap,
  planWindows,
  splitIntoWindows,
  type WindowCounter,
  type WindowSpan,
  wordSpans,
} from "../../src/embedder/windows.js";

function sum(counts: number[], w: WindowSpan): number {
  let total = 0;
  for (let i = w.start; i < w.end; i++) total += counts[i] ?? 0;
  return total;
}

/** Checks the invariants every plan must keep. */
function checkPlan(counts: number[], budget: number, overlap: number): WindowSpan[] {
  const windows = planWindows(counts, budget, overlap);
  if (counts.length === 0) {
    assert.deepEqual(windows, []);
    return windows;
  }
  assert.equal(windows[0]?.start, 0);
  assert.equal(windows.at(-1)?.end, counts.length);
  const limit = clampOverlap(overlap, budget);
  windows.forEach((w, k) => {
    assert.ok(w.end > w.start, `window ${k} empty`);
    const tokens = sum(counts, w);
    assert.ok(tokens <= budget || w.end - w.start === 1, `window ${k} has ${tokens} > ${budget}`);
    const prev = windows[k - 1];
    if (!prev) return;
    // Coverage without gaps, and progress: each window starts and ends later than the one before.
    assert.ok(w.start <= prev.end, `gap before window ${k}`);
    assert.ok(w.start > prev.start, `window ${k} does not start later`);
    assert.ok(w.end > prev.end, `window ${k} does not end later`);
    const shared = sum(counts, { start: w.start, end: Math.min(prev.end, w.end) });
    assert.ok(shared <= limit, `window ${k} shares ${shared} > ${limit}`);
  });
  return windows;
}

describe("planWindows", () => {
  it("returns no windows for no pieces and one window when everything fits", () => {
    assert.deepEqual(planWindows([], 10, 2), []);
    assert.deepEqual(planWindows([3, 3, 3], 10, 2), [{ start: 0, end: 3 }]);
  });

  it("packs greedily and shares about the overlap", () => {
    const counts = Array.from({ length: 100 }, () => 1);
    const windows = checkPlan(counts, 10, 3);
    assert.deepEqual(windows[0], { start: 0, end: 10 });
    assert.deepEqual(windows[1], { start: 7, end: 17 });
    // (100 - 3) / (10 - 3) → 14 windows.
    assert.equal(windows.length, Math.ceil((100 - 3) / (10 - 3)));
  });

  it("clamps the overlap to half the budget", () => {
    assert.equal(clampOverlap(50, 10), 5);
    assert.equal(clampOverlap(-3, 10), 0);
    const windows = checkPlan(
      Array.from({ length: 40 }, () => 1),
      10,
      50,
    );
    assert.deepEqual(windows[1], { start: 5, end: 15 });
  });

  it("keeps invariants on irregular piece sizes, overlaps and budgets", () => {
    for (let seed = 1; seed <= 200; seed++) {
      const counts = Array.from(
        { length: (seed * 37) % 90 },
        (_, i) => ((i * 7919 + seed * 31) % 9) + (i % 5 === 0 ? 0 : 1),
      );
      const budget = (seed % 20) + 3;
      checkPlan(counts, budget, seed % 13);
    }
  });

  it("gives a single oversized piece a window of its own and still progresses", () => {
    const counts = [2, 2, 30, 2, 2, 2];
    const windows = checkPlan(counts, 6, 2);
    assert.ok(windows.some((w) => w.start === 2 && w.end === 3));
    assert.deepEqual(planWindows([30], 6, 2), [{ start: 0, end: 1 }]);
  });

  it("makes progress when the next piece leaves no room for the overlap", () => {
    const windows = checkPlan([1, 1, 1, 1, 10], 10, 5);
    assert.deepEqual(windows, [
      { start: 0, end: 4 },
      { start: 4, end: 5 },
    ]);
  });

  it("rejects a non-positive budget", () => {
    assert.throws(() => planWindows([1], 0, 0), RangeError);
  });
});

describe("wordSpans", () => {
  it("finds runs of non-whitespace by offsets", () => {
    const text = "  Hello,  world!\n\tfoo ";
    const spans = wordSpans(text);
    assert.deepEqual(
      spans.map((s) => text.slice(s.start, s.end)),
      ["Hello,", "world!", "foo"],
    );
    assert.deepEqual(wordSpans("   "), []);
  });
});

/** One token per character, and 2 special tokens around a window: easy to reason about. */
const perCharacter: WindowCounter = {
  piece: (text) => [...text].length,
  window: (text) => [...text].length + 2,
};

describe("splitIntoWindows", () => {
  const words = Array.from({ length: 60 }, (_, i) => `w${i}`).join(" ");

  it("keeps a text that fits as one window, itself", () => {
    assert.deepEqual(
      splitIntoWindows("short text", perCharacter, { maxTokens: 64, fixedTokens: 2, overlapTokens: 4 }),
      [{ text: "short text", tokens: 12 }],
    );
  });

  it("cuts windows that are substrings, fit the limit and cover the text", () => {
    const windows = splitIntoWindows(words, perCharacter, {
      maxTokens: 40,
      fixedTokens: 2,
      overlapTokens: 6,
    });
    assert.ok(windows.length > 2);
    for (const window of windows) {
      assert.ok(words.includes(window.text), "a substring of the text");
      assert.ok(window.tokens <= 40, `${window.tokens} tokens fit the limit`);
      assert.equal(window.tokens, perCharacter.window(window.text));
    }
    assert.ok(words.startsWith(windows[0]!.text));
    assert.ok(words.endsWith(windows.at(-1)!.text));
  });

  it("shrinks the budget when whole windows count more than their pieces (context merges)", () => {
    // Each space costs a token in context but not alone: only measuring whole windows catches that.
    const spaced: WindowCounter = {
      piece: perCharacter.piece,
      window: (t) => t.length + 2 + t.split(" ").length,
    };
    const windows = splitIntoWindows(words, spaced, { maxTokens: 40, fixedTokens: 2, overlapTokens: 0 });
    for (const window of windows)
      assert.ok(window.tokens <= 40, `${window.tokens} tokens fit after shrinking`);
  });

  it("cuts a run without whitespace by characters, never inside a surrogate pair", () => {
    const run = "한국어".repeat(20) + "😀".repeat(20);
    const windows = splitIntoWindows(run, perCharacter, { maxTokens: 12, fixedTokens: 2, overlapTokens: 0 });
    assert.equal(windows.map((w) => w.text).join(""), run, "pieces of one run, in order, nothing lost");
    for (const window of windows) {
      assert.ok(window.tokens <= 12);
      assert.ok(!/[\uD800-\uDBFF]$/.test(window.text), "no window ends in half a surrogate pair");
    }
  });

  it("stops after maxWindows (truncation needs the first) and gives up when nothing fits", () => {
    const first = splitIntoWindows(words, perCharacter, {
      maxTokens: 40,
      fixedTokens: 2,
      overlapTokens: 0,
      maxWindows: 1,
    });
    assert.equal(first.length, 1);
    assert.ok(words.startsWith(first[0]!.text) && first[0]!.tokens <= 40);
    assert.deepEqual(
      splitIntoWindows(words, perCharacter, { maxTokens: 2, fixedTokens: 2, overlapTokens: 0 }),
      [],
    );
  });
});
