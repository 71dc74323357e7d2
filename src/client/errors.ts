import type { ErrorCode } from "../domain/errors.js";

/**
 * An error answered by the server (`{"error":{"code","message","details"}}`), or a client-side
 * failure: `network_error` (retries ran out), `timeout` (waiting gave up), `invalid_response`.
 */
export class RagEmbedError extends Error {
  readonly code: ErrorCode | ClientErrorCode | string;
  /** HTTP status; 0 when no response was received. */
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;
  /** Seconds the server asked to wait (429/503), when it said. */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    code: ErrorCode | ClientErrorCode | string,
    message: string,
    options: {
      status?: number;
      details?: Record<string, unknown>;
      retryAfterSeconds?: number;
      cause?: unknown;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "RagEmbedError";
    this.code = code;
    this.status = options.status ?? 0;
    this.details = options.details;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export type ClientErrorCode = "network_error" | "timeout" | "invalid_response";
