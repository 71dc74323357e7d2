/**
 * What a remote embedding engine reports for monitoring. Declared beside the Embedder interface, not
 * in the adapter, so the server's Prometheus implementation (server/remote-embedder-metrics.ts)
 * depends on an interface, never on an adapter.
 */

/**
 * What a failed request to a remote engine means for the work:
 * - rate_limited (429): the engine wants us to slow down; wait its Retry-After, then send again.
 * - unavailable (network errors, time-outs, 408, 5xx, TEI's 424, and 401/403/404, which a wrong key
 *   or URL causes for every text alike): the engine, not the text, is the problem; retry later.
 * - rejected (any other 4xx: 400, 413, 422): the engine refused what we sent; retrying the same texts
 *   cannot help, so the pipeline finds the offending chunk by embedding the batch chunk by chunk.
 */
export type FailureKind = "rate_limited" | "unavailable" | "rejected";

/** Implemented with prom-client in server/remote-embedder-metrics.ts. */
export interface RemoteEmbedderMetrics {
  /** One request answered or failed, with its wall time and what it carried. */
  request(outcome: "ok" | FailureKind, seconds: number, inputs: number, tokens: number): void;
  /** Texts served from the finished-vector cache instead of being sent again. */
  cacheHits(count: number): void;
}
