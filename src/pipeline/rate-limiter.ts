/**
 * Token bucket in chunks per second (EMBEDDING_MAX_RATE). A rate of 0 means no ceiling.
 * The bucket holds at most one second of chunks, so an idle period does not turn into a burst.
 */
export class RateLimiter {
  private available: number;
  private updatedAt: number;

  constructor(
    private readonly chunksPerSecond: number,
    private readonly now: () => number = Date.now,
  ) {
    this.available = Math.max(1, chunksPerSecond);
    this.updatedAt = now();
  }

  /** How many chunks may be taken now (Infinity when unlimited). */
  allowance(): number {
    if (this.chunksPerSecond <= 0) return Number.POSITIVE_INFINITY;
    this.refill();
    return Math.floor(this.available);
  }

  /** Milliseconds until at least one chunk may be taken. */
  waitMs(): number {
    if (this.chunksPerSecond <= 0) return 0;
    this.refill();
    if (this.available >= 1) return 0;
    return Math.ceil(((1 - this.available) / this.chunksPerSecond) * 1000);
  }

  take(chunks: number): void {
    if (this.chunksPerSecond <= 0) return;
    this.refill();
    this.available -= chunks;
  }

  private refill(): void {
    const now = this.now();
    const capacity = Math.max(1, this.chunksPerSecond);
    this.available = Math.min(
      capacity,
      this.available + ((now - this.updatedAt) / 1000) * this.chunksPerSecond,
    );
    this.updatedAt = now;
  }
}
