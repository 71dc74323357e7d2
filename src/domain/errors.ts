/**
 * The error catalog: every failure a client can see has a stable code. The HTTP layer maps codes to
 * statuses in one table (server/error-status.ts); nothing else decides a status.
 */
export const ERROR_CODES = [
  "invalid_json",
  "invalid_request",
  "empty_batch",
  "empty_text",
  "duplicate_chunk_id",
  "text_too_long",
  "payload_too_large",
  "unsupported_media_type",
  "queue_full",
  "not_found",
  "job_not_found",
  "collection_not_found",
  "model_not_ready",
  "shutting_down",
  "dimension_mismatch",
  "store_unavailable",
  "queue_unavailable",
  "insufficient_storage",
  "request_timeout",
  "method_not_allowed",
  "embedder_failed",
  "internal_error",
  "unauthorized",
  "rate_limited",
  "model_not_found",
  "model_mismatch",
  "reembed_not_needed",
  "reembed_pending",
  "collection_busy",
  "no_version",
  "version_migration_required",
  "versions_unsupported",
  "version_not_found",
  "version_active",
  "cutover_check_failed",
  "model_not_served",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * Answers that describe the server's normal life (the model still loading, a drain on SIGTERM, a
 * full queue, a rate limit), not a fault: logged at info without a stack, even the 503s.
 */
export const EXPECTED_CONDITIONS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "model_not_ready",
  "shutting_down",
  "queue_full",
  "rate_limited",
]);

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  /** Seconds a client should wait before trying again, when the error is transient. */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: { details?: Record<string, unknown>; retryAfterSeconds?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "AppError";
    this.code = code;
    this.details = options.details;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/**
 * An error from a store or embedder, classified so the pipeline knows whether retrying can help.
 * Adapters throw this; anything else is treated as retryable (the safe default: retries run out into
 * a dead letter that keeps the message).
 */
export class ProcessingError extends Error {
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  /** Part of normal operation (work interrupted by a shutdown): logs show it without a stack. */
  readonly expected: boolean;
  /**
   * The service behind the adapter is down, rate-limiting or refusing us, whatever the input: no
   * text is at fault, so the pipeline retries the batch whole instead of embedding it chunk by chunk.
   */
  readonly outage: boolean;

  constructor(
    message: string,
    options: {
      retryable: boolean;
      retryAfterMs?: number;
      cause?: unknown;
      expected?: boolean;
      outage?: boolean;
    },
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ProcessingError";
    this.retryable = options.retryable;
    this.retryAfterMs = options.retryAfterMs;
    this.expected = options.expected ?? false;
    this.outage = options.outage ?? false;
  }
}
