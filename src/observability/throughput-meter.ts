export interface Rates {
  chunksPerSecond: number;
  tokensPerSecond: number;
}

/** Where the server reads how fast the queue drains (this process, or every worker of a deployment). */
export interface ThroughputSource {
  rates(): Rates;
}

interface Completion {
  /** When the work began (a slice is embedded for a while before it is stored). */
  startedAt: number;
  /** When it was stored. */
  at: number;
  chunks: number;
  tokens: number;
}

/**
 * Chunks and tokens stored per second over a sliding window. Feeds Retry-After and the drain
 * estimate in /v1/status, so clients back off by what the server really achieves.
 *
 * Work is recorded as each slice of a reservation is stored (COMMIT_SLICE_TOKENS), after up to
 * seconds of embedding. Dividing by the time since the first completion in the window would credit
 * that work to an instant and overstate the rate, so the rate is measured from when the earliest
 * recorded work began.
 */
export class ThroughputMeter implements ThroughputSource {
  private readonly completions: Completion[] = [];

  constructor(
    private readonly windowMs = 30_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** `startedAt`: when this work began (default: now, for work that took no measurable time). */
  record(chunks: number, tokens: number, startedAt = this.now()): void {
    const at = this.now();
    this.completions.push({ startedAt: Math.min(startedAt, at), at, chunks, tokens });
    this.prune();
  }

  /** Rates over the window; zero when nothing was stored recently. */
  rates(): Rates {
    this.prune();
    if (this.completions.length === 0) return { chunksPerSecond: 0, tokensPerSecond: 0 };
    let since = Number.POSITIVE_INFINITY;
    let chunks = 0;
    let tokens = 0;
    for (const completion of this.completions) {
      since = Math.min(since, completion.startedAt);
      chunks += completion.chunks;
      tokens += completion.tokens;
    }
    // Never over less than 1 s, so a burst of trivial work does not claim an absurd rate.
    const spanSeconds = Math.max(1, (this.now() - since) / 1000);
    return { chunksPerSecond: chunks / spanSeconds, tokensPerSecond: tokens / spanSeconds };
  }

  private prune(): void {
    const horizon = this.now() - this.windowMs;
    while (this.completions.length > 0 && (this.completions[0]?.at ?? 0) < horizon) this.completions.shift();
  }
}
