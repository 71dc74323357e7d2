/**
 * Decides when the next request may go to a remote engine: at most `concurrency` in flight, within
 * EMBEDDER_RPM and EMBEDDER_TPM (token buckets, see perMinuteBucket), and not before a pause the
 * engine asked for (a 429's Retry-After) or that its outage imposes. Waiting requests go in order,
 * queries (someone is waiting for a search) before passages.
 */
import { perMinuteBucket, type TokenBucket } from "./token-bucket.js";

export interface SchedulerLimits {
  concurrency: number;
  /** Requests per minute; 0 = no limit. */
  rpm: number;
  /** Tokens per minute; 0 = no limit. */
  tpm: number;
  /** The most tokens one input can have: a request that large must always be able to go. */
  largestInputTokens: number;
}

interface Waiter {
  tokens: number;
  resolve(release: () => void): void;
  reject(error: unknown): void;
  signal: AbortSignal | undefined;
  onAbort(): void;
}

export class RequestScheduler {
  private readonly requests: TokenBucket | null;
  private readonly tokens: TokenBucket | null;
  private readonly urgent: Waiter[] = [];
  private readonly normal: Waiter[] = [];
  private inFlightCount = 0;
  private pausedUntil = 0;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = 0;

  constructor(
    private readonly limits: SchedulerLimits,
    private readonly now: () => number = Date.now,
  ) {
    const start = now();
    this.requests = limits.rpm > 0 ? perMinuteBucket(limits.rpm, 1, start) : null;
    this.tokens = limits.tpm > 0 ? perMinuteBucket(limits.tpm, limits.largestInputTokens, start) : null;
  }

  /** The most tokens a request may carry so that it fits the TPM bucket (unbounded without EMBEDDER_TPM). */
  get maxRequestTokens(): number {
    return this.tokens?.capacity ?? Number.POSITIVE_INFINITY;
  }

  get inFlight(): number {
    return this.inFlightCount;
  }

  /** Requests waiting for their turn. */
  get waiting(): number {
    return this.urgent.length + this.normal.length;
  }

  /** No request starts before `time` (ms since the epoch); a later pause wins over an earlier one. */
  pauseUntil(time: number): void {
    if (time <= this.pausedUntil) return;
    this.pausedUntil = time;
    this.pump();
  }

  /** When the current pause ends (0 if none was ever set). */
  get pausedUntilMs(): number {
    return this.pausedUntil;
  }

  /**
   * Resolves when a request of `tokens` may be sent; call the returned release once it is answered.
   * `urgent` (a query) goes before passages; `retry` (sent before, failed) before requests not sent yet.
   * Rejects with the signal's reason if the caller gives up while waiting.
   */
  acquire(
    tokens: number,
    options: { urgent?: boolean; retry?: boolean; signal?: AbortSignal } = {},
  ): Promise<() => void> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const queue = options.urgent ? this.urgent : this.normal;
      const waiter: Waiter = {
        tokens,
        resolve,
        reject,
        signal,
        onAbort: () => {
          const index = queue.indexOf(waiter);
          if (index >= 0) queue.splice(index, 1);
          reject(signal?.reason);
          this.pump();
        },
      };
      signal?.addEventListener("abort", waiter.onAbort, { once: true });
      if (options.retry) queue.unshift(waiter);
      else queue.push(waiter);
      this.pump();
    });
  }

  /** Rejects every waiting request (the embedder is closing). */
  close(reason: Error): void {
    for (const waiter of [...this.urgent.splice(0), ...this.normal.splice(0)]) {
      waiter.signal?.removeEventListener("abort", waiter.onAbort);
      waiter.reject(reason);
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private pump(): void {
    for (;;) {
      const waiter = this.urgent[0] ?? this.normal[0];
      if (!waiter || this.inFlightCount >= this.limits.concurrency) return;
      const now = this.now();
      const wait = Math.max(
        this.pausedUntil - now,
        this.requests?.waitMs(1, now) ?? 0,
        this.tokens?.waitMs(waiter.tokens, now) ?? 0,
      );
      if (wait > 0) {
        this.wakeAt(now + wait);
        return;
      }
      (this.urgent[0] === waiter ? this.urgent : this.normal).shift();
      waiter.signal?.removeEventListener("abort", waiter.onAbort);
      this.requests?.take(1, now);
      this.tokens?.take(waiter.tokens, now);
      this.inFlightCount += 1;
      let released = false;
      waiter.resolve(() => {
        if (released) return;
        released = true;
        this.inFlightCount -= 1;
        this.pump();
      });
    }
  }

  private wakeAt(time: number): void {
    if (this.timer && this.timerAt <= time) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = time;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.pump();
      },
      Math.max(1, time - this.now()),
    );
  }
}
