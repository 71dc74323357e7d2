/**
 * Packs inputs into requests to a remote engine: at most `maxInputs` texts and `maxTokens` tokens a
 * request (the per-request share of EMBEDDER_TPM), shortest first so that texts of similar length travel
 * together (engines that pad a request to its longest text waste less).
 */
export function packRequests(
  tokenCounts: readonly number[],
  maxInputs: number,
  maxTokens = Number.POSITIVE_INFINITY,
): number[][] {
  if (!Number.isInteger(maxInputs) || maxInputs < 1) {
    throw new RangeError(`maxInputs must be a positive integer, got ${maxInputs}`);
  }
  const order = tokenCounts.map((_, i) => i);
  // Stable: equal lengths keep input order.
  order.sort((a, b) => (tokenCounts[a] ?? 0) - (tokenCounts[b] ?? 0));
  const requests: number[][] = [];
  let current: number[] = [];
  let tokens = 0;
  for (const index of order) {
    const cost = tokenCounts[index] ?? 0;
    // An input over the token cap on its own still goes, alone.
    if (current.length > 0 && (current.length >= maxInputs || tokens + cost > maxTokens)) {
      requests.push(current);
      current = [];
      tokens = 0;
    }
    current.push(index);
    tokens += cost;
  }
  if (current.length > 0) requests.push(current);
  return requests;
}
