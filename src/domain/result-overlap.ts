/**
 * How much two versions of a collection agree on a query: the overlap of their top-k answers. A
 * cutover check (POST .../cutover with `check`) asks it of sample queries before moving a
 * collection's name to a re-embedded version: a new model that answers with other chunks than the
 * old one shows here before any client sees it.
 */

/**
 * The share of top-k chunk ids both answers hold: |A ∩ B| / k over distinct ids (a split chunk's
 * windows count as their chunk once). k is `topK`, or the larger answer's count of distinct ids when
 * both hold fewer (a collection smaller than k is not a disagreement). Two empty answers agree (1).
 * Ids past `topK` in either list are ignored.
 */
export function topKOverlap(a: readonly string[], b: readonly string[], topK: number): number {
  if (!Number.isInteger(topK) || topK < 1)
    throw new RangeError(`topK must be a positive integer, got ${topK}`);
  const left = new Set(a.slice(0, topK));
  const right = new Set(b.slice(0, topK));
  const k = Math.max(left.size, right.size);
  if (k === 0) return 1;
  let shared = 0;
  for (const id of left) if (right.has(id)) shared += 1;
  return shared / k;
}

/** The mean of per-query overlaps; no queries is no evidence, so it is refused. */
export function meanOverlap(overlaps: readonly number[]): number {
  if (overlaps.length === 0) throw new RangeError("the mean overlap of no queries is undefined");
  return overlaps.reduce((sum, overlap) => sum + overlap, 0) / overlaps.length;
}

export interface OverlapVerdict {
  mean: number;
  passed: boolean;
}

/**
 * Whether the mean overlap reaches `minOverlap`. The mean is compared after rounding to 1e-9 so that
 * a threshold equal to the mean of exact fractions (0.6 of 10 = 6/10) is reached despite float sums.
 */
export function overlapVerdict(overlaps: readonly number[], minOverlap: number): OverlapVerdict {
  const mean = meanOverlap(overlaps);
  return { mean, passed: Math.round(mean * 1e9) >= Math.round(minOverlap * 1e9) };
}
