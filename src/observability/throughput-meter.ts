export interface Rates {
  chunksPerSecond: number;
  tokensPerSecond: number;
}

/** Where the server reads how fast the queue drains (this process, or every worker of a deployment). */
export interface ThroughputSource {
  rates(): Rates;
}

/**
 * Chunks and tokens stored per second over a sliding window. Feeds Retry-After and the drain
 * estimate in /v1/status, so clients back off by what the server really achieves.
 */
export class ThroughputMeter implements ThroughputSource {
  private readonly events: Array<{ at: number; chunks: number; tokens: number }> = [];

  constructor(
    private readonly windowMs = 30_000,
    private readonly now: () => number = Date.now,
  ) {}

  record(chunks: number, tokens: number): void {
    this.events.push({ at: this.now(), chunks, tokens });
    this.prune();
  }

  /** Rates over the window; zero when nothing was stored recently. */
  rates(): Rates {
    this.prune();
    const first = this.events[0];
    if (!first) return { chunksPerSecond: 0, tokensPerSecond: 0 };
    // Measure from the first event in the window, but never over less than 1 s, so one batch
    // finishing right now does not claim an absurd rate.
    const spanSeconds = Math.max(1, (this.now() - first.at) / 1000);
    let chunks = 0;
    let tokens = 0;
    for (const event of this.events) {
      chunks += event.chunks;
      tokens += event.tokens;
    }
    return { chunksPerSecond: chunks / spanSeconds, tokensPerSecond: tokens / spanSeconds };
  }

  private prune(): void {
    const horizon = this.now() - this.windowMs;
    while (this.events.length > 0 && (this.events[0]?.at ?? 0) < horizon) this.events.shift();
  }
}
