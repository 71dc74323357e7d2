import { backoffMs } from "../domain/backoff.js";
import { AppError, ProcessingError } from "../domain/errors.js";

export interface RetryDecision {
  retryable: boolean;
  delayMs: number;
  reason: string;
}

/**
 * Decides whether a failed batch is worth retrying. Permanent errors (schema, dimension or model
 * mismatch) go straight to dead letters: retrying cannot fix them, only delay the verdict (a chunk
 * refused by a collection bound to another model is replayed once the server runs that model).
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
    (error.code === "dimension_mismatch" ||
      error.code === "model_mismatch" ||
      error.code === "invalid_request")
  ) {
    return { retryable: false, delayMs: 0, reason };
  }
  if (error instanceof ProcessingError) {
    const delay = Math.max(backoffMs(attempts, baseMs, maxMs, "equal"), error.retryAfterMs ?? 0);
    return { retryable: error.retryable, delayMs: delay, reason };
  }
  return { retryable: true, delayMs: backoffMs(attempts, baseMs, maxMs, "equal"), reason };
}

export function describeError(error: unknown): string {
  if (error instanceof AppError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return error.message;
  return String(error);
}
