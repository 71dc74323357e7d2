import { AppError, ProcessingError } from "../domain/errors.js";

export interface RetryDecision {
  retryable: boolean;
  delayMs: number;
  reason: string;
}

/** Exponential backoff with full jitter between half and the whole step, capped. */
export function backoffDelay(attempts: number, baseMs: number, maxMs: number, random = Math.random): number {
  const step = Math.min(maxMs, baseMs * 2 ** attempts);
  return Math.round(step / 2 + (random() * step) / 2);
}

/**
 * Decides whether a failed batch is worth retrying. Permanent errors (schema or dimension
 * mismatch) go straight to dead letters: retrying cannot fix them, only delay the verdict.
 */
export function classifyFailure(
  error: unknown,
  attempts: number,
  baseMs: number,
  maxMs: number,
): RetryDecision {
  const reason = describeError(error);
  if (
    error instanceof AppError &&
    (error.code === "dimension_mismatch" || error.code === "invalid_request")
  ) {
    return { retryable: false, delayMs: 0, reason };
  }
  if (error instanceof ProcessingError) {
    const delay = Math.max(backoffDelay(attempts, baseMs, maxMs), error.retryAfterMs ?? 0);
    return { retryable: error.retryable, delayMs: delay, reason };
  }
  return { retryable: true, delayMs: backoffDelay(attempts, baseMs, maxMs), reason };
}

export function describeError(error: unknown): string {
  if (error instanceof AppError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return error.message;
  return String(error);
}
