/**
 * Window planning for the split overflow policy, kept pure for tests. A text is cut into pieces
 * (whitespace-separated words, long runs cut by characters), each with its token count; windows are
 * runs of consecutive pieces that fit a token budget, consecutive windows sharing about `overlap`
 * tokens.
 */

/** A window over piece indices: pieces [start, end). */
export interface WindowSpan {
  start: number;
  end: number;
}

/** A piece of a text by character offsets: text.slice(start, end). */
export interface TextSpan {
  start: number;
  end: number;
}

/** Words of a text: its maximal runs of non-whitespace, by offsets, so windows stay exact substrings. */
export function wordSpans(text: string): TextSpan[] {
  const spans: TextSpan[] = [];
  for (const match of text.matchAll(/\S+/g)) {
    const start = match.index ?? 0;
    spans.push({ start, end: start + match[0].length });
  }
  return spans;
}

/** The overlap actually used: never negative, at most half the budget. */
export function clampOverlap(overlap: number, budget: number): number {
  if (!Number.isFinite(overlap) || overlap <= 0) return 0;
  return Math.min(Math.floor(overlap), Math.floor(budget / 2));
}

/**
 * Packs pieces greedily into windows of at most `budget` tokens. Every piece is covered, windows are in
 * order, and every window after the first ends later than the one before (progress is guaranteed). The
 * next window starts by stepping back whole pieces while they share at most `overlap` tokens (clamped
 * to half the budget) and still leave room for the next new piece. A piece over the budget on its own
 * forms a window of one (callers cut such pieces first) and is not shared with neighbours.
 */
export function planWindows(
  pieceTokenCounts: readonly number[],
  budget: number,
  overlap: number,
): WindowSpan[] {
  if (!(budget > 0)) throw new RangeError(`window budget must be positive, got ${budget}`);
  const shareLimit = clampOverlap(overlap, budget);
  const count = (i: number): number => Math.max(0, pieceTokenCounts[i] ?? 0);
  const n = pieceTokenCounts.length;
  const windows: WindowSpan[] = [];
  let start = 0;
  while (start < n) {
    let end = start;
    let sum = 0;
    while (end < n && (end === start || sum + count(end) <= budget)) {
      sum += count(end);
      end++;
    }
    windows.push({ start, end });
    if (end >= n) break;

    // Share the tail of this window, but leave room for the next piece so the next window progresses.
    const room = Math.min(shareLimit, budget - count(end));
    let next = end;
    let shared = 0;
    while (next - 1 > start && shared + count(next - 1) <= room) {
      shared += count(next - 1);
      next--;
    }
    start = next;
  }
  return windows;
}
