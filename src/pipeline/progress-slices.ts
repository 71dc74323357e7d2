/**
 * Cuts a reservation's work into slices that are embedded and committed one after another, so that
 * progress (stored chunks, queue size, throughput) moves a slice at a time instead of a whole
 * reservation at a time.
 *
 * Items are sorted by estimated tokens first (shortest first, stable) and cut in that order: each
 * slice holds texts of similar length, so the embedder's length-sorted forward passes pad as little
 * as they did over the whole reservation, and the first slice (the shortest texts) is stored soonest.
 * A slice closes before the item that would take it past `maxTokens`; an item larger than the
 * budget forms a slice of its own.
 */
export function sliceByTokens<T>(
  items: readonly T[],
  tokensOf: (item: T) => number,
  maxTokens: number,
): T[][] {
  const sorted = items.map((item, index) => ({ item, index, tokens: Math.max(0, tokensOf(item)) }));
  sorted.sort((a, b) => a.tokens - b.tokens || a.index - b.index);
  const slices: T[][] = [];
  let current: T[] = [];
  let tokens = 0;
  for (const { item, tokens: size } of sorted) {
    if (current.length > 0 && tokens + size > maxTokens) {
      slices.push(current);
      current = [];
      tokens = 0;
    }
    current.push(item);
    tokens += size;
  }
  if (current.length > 0) slices.push(current);
  return slices;
}
