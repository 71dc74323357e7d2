/**
 * A token bucket: `capacity` units, refilled continuously at `refillPerMs`, starting full. Whatever the
 * timing, the units taken in any time window of length W are at most capacity + refillPerMs × W.
 */
export class TokenBucket {
  private level: number;
  private updatedAt: number;

  constructor(
    readonly capacity: number,
    readonly refillPerMs: number,
    now: number,
  ) {
    if (!(capacity > 0) || !(refillPerMs > 0)) {
      throw new RangeError(`a bucket needs a positive capacity and refill (got ${capacity}, ${refillPerMs})`);
    }
    this.level = capacity;
    this.updatedAt = now;
  }

  /** Milliseconds until `cost` units are available (0 = now). A cost over the capacity waits for a full bucket. */
  waitMs(cost: number, now: number): number {
    this.refill(now);
    const needed = Math.min(cost, this.capacity);
    return this.level >= needed ? 0 : Math.ceil((needed - this.level) / this.refillPerMs);
  }

  take(cost: number, now: number): void {
    this.refill(now);
    this.level -= cost;
  }

  private refill(now: number): void {
    if (now > this.updatedAt) {
      this.level = Math.min(this.capacity, this.level + (now - this.updatedAt) * this.refillPerMs);
      this.updatedAt = now;
    }
  }
}

const MINUTE_MS = 60_000;

/**
 * The bucket that keeps to a provider's per-minute limit. Providers enforce "per minute" over shorter
 * periods too (OpenAI: 60 RPM may be enforced as 1 request a second), so the burst is about one second's
 * worth (at least `largestCost`, else the largest request could never go) and the rest of the minute is
 * refilled evenly. What one 60-second window [t, t + 60 s) can take is less than the burst plus the
 * refill over the time between its first and last request (under 60 s): with refill × 60 s =
 * limit − burst + 1 that is under limit + 1, so at most the limit, whole units being taken. The
 * sustained rate is limit − burst + 1 a minute.
 */
export function perMinuteBucket(limit: number, largestCost: number, now: number): TokenBucket {
  const capacity = Math.max(largestCost, Math.floor(limit / 60));
  if (capacity > limit) {
    throw new RangeError(`a limit of ${limit} a minute is less than one request of ${largestCost}`);
  }
  return new TokenBucket(capacity, (limit - capacity + 1) / MINUTE_MS, now);
}
