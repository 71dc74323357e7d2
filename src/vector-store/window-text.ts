/**
 * A split chunk's text is stored once: in its windows' own texts. Each window records where its text
 * starts in the chunk's text, and window 0 records what no window covers (the whitespace between
 * windows that do not overlap, before the first and after the last), so the chunk's text can be put
 * back together from its windows exactly, without a copy of it beside them.
 */
import type { ParentLayout, WindowPlacement } from "../domain/types.js";

/**
 * Where each window's text starts in `text`. A splitter's windows are substrings in order, each
 * starting no later than the first non-blank character after the one before ends; in repetitive text
 * the same words occur elsewhere too, so each is looked for at the last place it can start. Any
 * occurrence holds the same characters, so the text comes back the same whichever is found; the
 * right one leaves only whitespace for the layout to keep.
 */
export function locateWindows(text: string, windowTexts: readonly string[]): number[] {
  const starts: number[] = [];
  let covered = 0;
  windowTexts.forEach((windowText, index) => {
    const nextWord = text.slice(covered).search(/\S/);
    const latest = nextWord < 0 ? text.length : covered + nextWord;
    let start = text.lastIndexOf(windowText, latest);
    // Not where a splitter would have put it: wherever it is.
    if (start < 0) start = text.indexOf(windowText);
    if (start < 0) throw new Error(`window ${index} of a split chunk is not a substring of its text`);
    starts.push(start);
    covered = Math.max(covered, start + windowText.length);
  });
  return starts;
}

/** The text's length and the parts of it that no window covers. */
export function parentLayout(
  text: string,
  windows: ReadonlyArray<{ start: number; text: string }>,
): ParentLayout {
  const gaps: Array<[number, string]> = [];
  let covered = 0;
  for (const window of [...windows].sort((a, b) => a.start - b.start)) {
    if (window.start > covered) gaps.push([covered, text.slice(covered, window.start)]);
    covered = Math.max(covered, window.start + window.text.length);
  }
  if (covered < text.length) gaps.push([covered, text.slice(covered)]);
  return { length: text.length, gaps };
}

/** Puts a text back together from its windows and layout; null when they leave a hole (a window is missing). */
export function stitchText(
  windows: ReadonlyArray<{ start: number; text: string }>,
  layout: ParentLayout,
): string | null {
  const pieces = [...windows, ...layout.gaps.map(([start, text]) => ({ start, text }))].sort(
    (a, b) => a.start - b.start,
  );
  let text = "";
  for (const piece of pieces) {
    if (piece.start > text.length) return null;
    const end = piece.start + piece.text.length;
    if (end > text.length) text += piece.text.slice(text.length - piece.start);
  }
  return text.length === layout.length ? text : null;
}

/** One stored point of a split chunk, as a store reads it back. */
export interface StoredWindow {
  version: number | null;
  /** The point's `window_text` payload field. */
  text: unknown;
  window: WindowPlacement | undefined;
}

/**
 * The chunk's text from the points of one chunk. Only the points of window 0's version count: while
 * a newer version is being written, an older version's windows may still be there.
 */
export function parentTextFrom(points: readonly StoredWindow[]): string | null {
  const first = points.find((p) => p.window?.parent !== undefined);
  const layout = first?.window?.parent;
  if (first === undefined || layout === undefined) return null;
  const windows = points.flatMap((p) =>
    p.version === first.version && p.window !== undefined && typeof p.text === "string"
      ? [{ start: p.window.start, text: p.text }]
      : [],
  );
  return stitchText(windows, layout);
}

/** The chunk texts of the points of several chunks, read back in any order: by group (parent) id. */
export function parentTextsByGroup(
  points: Iterable<{ group: string; point: StoredWindow }>,
): Map<string, string> {
  const byGroup = new Map<string, StoredWindow[]>();
  for (const { group, point } of points) {
    const windows = byGroup.get(group) ?? [];
    windows.push(point);
    byGroup.set(group, windows);
  }
  const texts = new Map<string, string>();
  for (const [group, windows] of byGroup) {
    const text = parentTextFrom(windows);
    if (text !== null) texts.set(group, text);
  }
  return texts;
}
