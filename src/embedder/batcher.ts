/**
 * Batch planning. A batch costs (items × longest item) because every row is padded to the longest one,
 * so texts are sorted by length first: on mixed-length text this roughly doubles throughput, and the
 * token budget bounds ORT's peak memory (32 × 512 tokens peaked at ~4 GB). The budget and the size cap
 * together are the per-length rule: many short texts per pass, few long ones. Small passes measured
 * best per CPU-second for single-threaded sessions (512 padded tokens: the working set stays in cache;
 * docs/bench.md, "Batch shape").
 */
export interface BatchPlanOptions {
  /** Upper bound on padded tokens per batch (batch size × longest length). */
  maxBatchTokens: number;
  /** Upper bound on items per batch (short texts; long ones hit the token budget first). */
  maxBatchSize: number;
}

/**
 * Groups input indices into batches, shortest texts first. Every index appears exactly once; an item
 * longer than the budget on its own forms a batch of one (the caller truncates, so it is bounded).
 */
export function planBatches(tokenLengths: number[], options: BatchPlanOptions): number[][] {
  const { maxBatchTokens, maxBatchSize } = options;
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) {
    throw new RangeError(`maxBatchSize must be a positive integer, got ${maxBatchSize}`);
  }
  if (!(maxBatchTokens > 0)) {
    throw new RangeError(`maxBatchTokens must be positive, got ${maxBatchTokens}`);
  }

  const order = tokenLengths.map((_, i) => i);
  // Array.prototype.sort is stable, so equal lengths keep input order.
  order.sort((a, b) => (tokenLengths[a] ?? 0) - (tokenLengths[b] ?? 0));

  const batches: number[][] = [];
  let current: number[] = [];
  for (const index of order) {
    // Ascending order: the item being added is the longest in the batch.
    const length = tokenLengths[index] ?? 0;
    const paddedCost = (current.length + 1) * length;
    if (current.length > 0 && (current.length + 1 > maxBatchSize || paddedCost > maxBatchTokens)) {
      batches.push(current);
      current = [];
    }
    current.push(index);
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
