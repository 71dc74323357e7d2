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

/** How a splitter measures text; backed by the model's tokenizer, or by a conservative estimate. */
export interface WindowCounter {
  /** Tokens of a piece of the text on its own: no prefix, no special tokens. */
  piece(text: string): number;
  /** Tokens of a window as the model sees it: prefix, window text and special tokens. */
  window(text: string): number;
}

export interface SplitOptions {
  /** The model's limit per input, prefix and special tokens included. */
  maxTokens: number;
  /** Tokens every window carries besides its text: the prefix and the special tokens. */
  fixedTokens: number;
  overlapTokens: number;
  /** Stop after this many windows (truncation needs only the first). */
  maxWindows?: number;
}

/** A window of a text: a substring of it, with its token count as the model sees it. */
export interface PlannedWindow {
  text: string;
  tokens: number;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

/**
 * Cuts one run without whitespace (CJK, a URL, …) that is over the budget on its own into pieces of at
 * most `budget` tokens, by binary search on the character count. Every piece is at least one code point long, so this
 * always ends; a surrogate pair is never cut.
 */
function cutByCharacters(
  text: string,
  span: TextSpan,
  budget: number,
  countSpan: (span: TextSpan) => number,
): TextSpan[] {
  const pieces: TextSpan[] = [];
  let pos = span.start;
  while (pos < span.end) {
    // A token is far shorter than 32 characters, so longer probes cannot fit and only cost time.
    let lo = 1;
    let hi = Math.min(span.end - pos, budget * 32);
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (countSpan({ start: pos, end: pos + mid }) <= budget) lo = mid;
      else hi = mid - 1;
    }
    let end = pos + lo;
    if (end < span.end && isHighSurrogate(text.charCodeAt(end - 1))) end += lo > 1 ? -1 : 1;
    pieces.push({ start: pos, end });
    pos = end;
  }
  return pieces;
}

/**
 * Cuts a text into overlapping windows that are substrings of it and each fit `maxTokens` (prefix and
 * special tokens included), at whitespace where it can. A text that fits is one window. Pieces are
 * counted alone and the tokenizer may merge differently in context, so every window is measured whole
 * and the budget shrinks by the worst excess until all fit (usually at once); after a few rounds the
 * windows are returned as they are and a window may still be over (its caller truncates it).
 * Returns [] when not even one text token fits next to the fixed tokens.
 */
export function splitIntoWindows(
  text: string,
  counter: WindowCounter,
  options: SplitOptions,
): PlannedWindow[] {
  const { maxTokens, fixedTokens, overlapTokens } = options;
  const memo = new Map<string, number>();
  const countSpan = (span: TextSpan): number => {
    const key = `${span.start}:${span.end}`;
    let count = memo.get(key);
    if (count === undefined) {
      count = counter.piece(text.slice(span.start, span.end));
      memo.set(key, count);
    }
    return count;
  };
  let budget = maxTokens - fixedTokens;
  if (budget < 1) return [];

  const words = wordSpans(text);
  for (let attempt = 0; ; attempt++) {
    const limit = budget;
    // A run cut into pieces of half the overlap can still share about `overlapTokens` between windows.
    const overlap = clampOverlap(overlapTokens, limit);
    const cutLimit = overlap > 0 ? Math.max(1, Math.ceil(overlap / 2)) : limit;
    const pieces = words.flatMap((word) =>
      countSpan(word) <= limit ? [word] : cutByCharacters(text, word, cutLimit, countSpan),
    );
    const plan = planWindows(pieces.map(countSpan), limit, overlapTokens).slice(0, options.maxWindows);
    const windows = plan.map(({ start, end }) => {
      const windowText = text.slice(pieces[start]?.start ?? 0, pieces[end - 1]?.end ?? 0);
      return { text: windowText, tokens: counter.window(windowText) };
    });
    const excess = Math.max(0, ...windows.map((w) => w.tokens - maxTokens));
    if (excess === 0 || limit <= 1 || attempt >= 6) return windows;
    budget = Math.max(1, limit - excess);
  }
}
