/**
 * Pooling and normalisation of a model's token vectors. Pure functions over flat arrays so they can be
 * tested without a model; the worker feeds them `last_hidden_state` and the attention mask.
 */
export type Pooling = "mean" | "cls";

/** A mask as tokenizers produce it: 1 for real tokens, 0 for padding (int64 tensors give bigints). */
export type AttentionMask = ArrayLike<number | bigint>;

/**
 * Pools `hidden` ([batch, seq, dim], row-major) into [batch, dim].
 * mean: average over positions where the mask is set, as sentence-transformers does, so padding never
 * changes a vector. cls: the first position (right padding keeps it the CLS token).
 */
export function pool(
  hidden: Float32Array,
  dims: readonly number[],
  mask: AttentionMask,
  pooling: Pooling,
): Float32Array {
  const [batch, seq, dim] = dims;
  if (dims.length !== 3 || batch === undefined || seq === undefined || dim === undefined) {
    throw new Error(`expected [batch, seq, dim] hidden state, got [${dims.join(", ")}]`);
  }
  if (hidden.length !== batch * seq * dim) {
    throw new Error(
      `hidden state has ${hidden.length} values, dims [${dims.join(", ")}] need ${batch * seq * dim}`,
    );
  }
  if (pooling === "mean" && mask.length !== batch * seq) {
    throw new Error(`attention mask has ${mask.length} values, expected ${batch * seq}`);
  }

  const out = new Float32Array(batch * dim);
  if (pooling === "cls") {
    for (let b = 0; b < batch; b++) {
      out.set(hidden.subarray(b * seq * dim, b * seq * dim + dim), b * dim);
    }
    return out;
  }

  // Accumulate in float64: summing up to 512 float32 rows loses digits otherwise.
  const sum = new Float64Array(dim);
  for (let b = 0; b < batch; b++) {
    sum.fill(0);
    let count = 0;
    for (let s = 0; s < seq; s++) {
      if (Number(mask[b * seq + s]) === 0) continue;
      count++;
      const base = (b * seq + s) * dim;
      for (let d = 0; d < dim; d++) sum[d] = (sum[d] ?? 0) + (hidden[base + d] ?? 0);
    }
    // An all-padding row (impossible with special tokens) yields zeros rather than NaN, like the
    // sentence-transformers clamp(min=1e-9).
    const divisor = Math.max(count, 1e-9);
    for (let d = 0; d < dim; d++) out[b * dim + d] = (sum[d] ?? 0) / divisor;
  }
  return out;
}

/** L2-normalises each `dim`-long row in place; zero rows stay zero (eps as torch's F.normalize). */
export function normalizeRows(matrix: Float32Array, dim: number): void {
  if (dim <= 0 || matrix.length % dim !== 0) {
    throw new Error(`matrix of ${matrix.length} values is not a whole number of ${dim}-long rows`);
  }
  for (let start = 0; start < matrix.length; start += dim) {
    let squares = 0;
    for (let d = start; d < start + dim; d++) {
      const v = matrix[d] ?? 0;
      squares += v * v;
    }
    const scale = 1 / Math.max(Math.sqrt(squares), 1e-12);
    for (let d = start; d < start + dim; d++) matrix[d] = (matrix[d] ?? 0) * scale;
  }
}

/**
 * The normalised mean of equal-length vectors: the one vector of a pooled chunk, from its windows'
 * vectors. The mean runs in float64 for the same reason as `pool`.
 */
export function normalizedMean(vectors: readonly Float32Array[]): Float32Array {
  const first = vectors[0];
  if (first === undefined) throw new Error("normalizedMean needs at least one vector");
  const sum = new Float64Array(first.length);
  for (const vector of vectors) {
    if (vector.length !== first.length) {
      throw new Error(`vectors of ${vector.length} and ${first.length} values cannot be averaged`);
    }
    for (let d = 0; d < vector.length; d++) sum[d] = (sum[d] ?? 0) + (vector[d] ?? 0);
  }
  const mean = Float32Array.from(sum, (value) => value / vectors.length);
  normalizeRows(mean, mean.length);
  return mean;
}
