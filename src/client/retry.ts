/** Pure helpers for the client's waiting: Retry-After parsing and jittered backoff. */
import { backoffMs as backoff } from "../domain/backoff.js";

/** Seconds from a Retry-After header (delta-seconds or an HTTP date), or undefined when absent/invalid. */
export function parseRetryAfter(header: string | null | undefined, now = Date.now()): number | undefined {
  if (header === null || header === undefined || header.trim() === "") return undefined;
  const trimmed = header.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, (date - now) / 1000);
}

/**
 * How long to wait after a 429/503: the server's Retry-After (or `fallbackMs`), capped at `capMs`,
 * spread by ±`jitter` (a fraction) so many clients do not come back in the same instant.
 */
export function retryDelayMs(
  retryAfterSeconds: number | undefined,
  { fallbackMs, capMs, jitter, random = Math.random }: RetryDelayOptions,
): number {
  const base = retryAfterSeconds === undefined ? fallbackMs : retryAfterSeconds * 1000;
  const capped = Math.min(Math.max(base, 0), capMs);
  const spread = capped * jitter * (2 * random() - 1);
  return Math.max(0, Math.round(capped + spread));
}

export interface RetryDelayOptions {
  fallbackMs: number;
  capMs: number;
  /** Fraction of the delay added or removed at random (0.2 = ±20 %). */
  jitter: number;
  random?: () => number;
}

/** Exponential backoff with full jitter: uniform in [0, min(cap, base × 2^attempt)]. */
export function backoffMs(attempt: number, baseMs: number, capMs: number, random = Math.random): number {
  return backoff(attempt, baseMs, capMs, "full", random);
}

/** A sleep that ends early (rejecting with the signal's reason) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
