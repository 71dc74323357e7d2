import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  locateWindows,
  parentLayout,
  parentTextFrom,
  stitchText,
} from "../../src/vector-store/window-text.js";

/** Windows as the splitter makes them: runs of whole words, in order, each starting after the one before. */
function windowsOf(text: string, wordsPerWindow: number, overlapWords: number): string[] {
  const words = [...text.matchAll(/\S+/g)].map((m) => ({
    start: m.index ?? 0,
    end: (m.index ?? 0) + m[0].length,
  }));
  const windows: string[] = [];
  let first = 0;
  while (first < words.length) {
    const last = Math.min(words.length, first + wordsPerWindow);
    windows.push(text.slice(words[first]!.start, words[last - 1]!.end));
    if (last >= words.length) break;
    first = Math.max(first + 1, last - overlapWords);
  }
  return windows;
}

const whitespace = fc.constantFrom(" ", "  ", "\n", "\n\n", "\t", " \u3000");
const word = fc.constantFrom("약관은", "제1조", "tablets", "500mg", "😀", "a", "서비스", "이용");
const texts = fc
  .array(fc.tuple(whitespace, word), { minLength: 1, maxLength: 60 })
  .chain((parts) => whitespace.map((tail) => `${parts.map(([ws, w]) => ws + w).join("")}${tail}`));

describe("window text", () => {
  it("gives any split text back exactly from its windows, whatever the whitespace and overlap", () => {
    fc.assert(
      fc.property(
        texts,
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 4 }),
        (text, size, overlap) => {
          const windowTexts = windowsOf(text, size, Math.min(overlap, size - 1));
          const starts = locateWindows(text, windowTexts);
          const windows = windowTexts.map((t, i) => ({ start: starts[i] ?? 0, text: t }));
          for (const w of windows) assert.equal(text.slice(w.start, w.start + w.text.length), w.text);
          const layout = parentLayout(text, windows);
          for (const [, gap] of layout.gaps)
            assert.equal(gap.trim(), "", "only whitespace is left between windows");
          assert.equal(stitchText(windows, layout), text);
        },
      ),
    );
  });

  it("does the same for a run without whitespace cut by characters (CJK, URLs), repetitive or not", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom("가", "나", "a", "1"), minLength: 1, maxLength: 80 }),
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 0, max: 5 }),
        (text, size, overlap) => {
          const windowTexts: string[] = [];
          for (let start = 0; ; start = Math.max(start + 1, start + size - overlap)) {
            windowTexts.push(text.slice(start, start + size));
            if (start + size >= text.length) break;
          }
          const starts = locateWindows(text, windowTexts);
          const windows = windowTexts.map((t, i) => ({ start: starts[i] ?? 0, text: t }));
          const layout = parentLayout(text, windows);
          assert.deepEqual(layout.gaps, [], "consecutive pieces leave nothing uncovered");
          assert.equal(stitchText(windows, layout), text);
        },
      ),
    );
  });

  it("says null when a window is missing, rather than returning part of the text", () => {
    const text = "제1조 목적 제2조 정의 제3조 효력";
    const windowTexts = ["제1조 목적", "제2조 정의", "제3조 효력"];
    const starts = locateWindows(text, windowTexts);
    const windows = windowTexts.map((t, i) => ({ start: starts[i] ?? 0, text: t }));
    const layout = parentLayout(text, windows);
    assert.equal(stitchText(windows, layout), text);
    assert.equal(stitchText([windows[0]!, windows[2]!], layout), null, "a hole in the middle");
    assert.equal(stitchText(windows.slice(0, 2), layout), null, "the last window missing");
  });

  it("uses only the windows of window 0's version (a rewrite may leave an older version's windows)", () => {
    const text = "alpha beta gamma";
    const layout = { length: text.length, gaps: [] as Array<[number, string]> };
    const points = [
      { version: 7, text: "alpha beta", window: { start: 0, parent: layout } },
      { version: 7, text: "beta gamma", window: { start: 6 } },
      { version: 6, text: "XXXXXXXXXXXXXXXX", window: { start: 0 } },
    ];
    assert.equal(parentTextFrom(points), text);
    assert.equal(parentTextFrom(points.slice(1)), null, "no window 0: no layout to put the text together");
    assert.equal(parentTextFrom([points[0]!, points[2]!]), null, "window 1 of version 7 is missing");
  });
});
