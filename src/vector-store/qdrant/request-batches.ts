/**
 * Splits items into consecutive batches of at most `maxItems` items and about `maxBytes` of JSON
 * each (by `sizeOf`, an estimate). An item bigger than `maxBytes` travels alone.
 */
export function splitBatches<T>(
  items: readonly T[],
  maxItems: number,
  maxBytes: number,
  sizeOf: (item: T) => number,
): T[][] {
  const batches: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = sizeOf(item);
    if (current.length > 0 && (current.length >= maxItems || bytes + size > maxBytes)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** Upper estimate of a vector's JSON: a float32 widened to a double prints in at most ~24 characters. */
export function vectorJsonBytes(dimension: number): number {
  return dimension * 24 + 2;
}
