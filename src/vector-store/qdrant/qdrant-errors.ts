import { AppError, ProcessingError } from "../../domain/errors.js";

export interface QdrantCallContext {
  /** What the adapter was doing, e.g. "upsert" or "search". */
  operation: string;
  /** The collection it was about; "" for calls about the server itself. */
  collection: string;
  /** The per-request timeout, named in timeout messages. */
  timeoutMs: number;
}

/** Shape of the client's ApiError (from @qdrant/openapi-typescript-fetch, not a direct dependency). */
interface ApiErrorLike {
  status: number;
  statusText?: string;
  data?: unknown;
  headers?: { get(name: string): string | null };
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_CLOSED",
]);

function isApiError(error: unknown): error is ApiErrorLike {
  return (
    typeof error === "object" &&
    error !== null &&
    typeof (error as { status?: unknown }).status === "number" &&
    "data" in error
  );
}

/** Qdrant's own message: `status.error` of its error body, else the raw body or the status text. */
export function qdrantMessage(data: unknown, fallback: string): string {
  if (typeof data === "object" && data !== null) {
    const status = (data as { status?: unknown }).status;
    if (typeof status === "object" && status !== null) {
      const error = (status as { error?: unknown }).error;
      if (typeof error === "string" && error.length > 0) return error;
    }
    return JSON.stringify(data).slice(0, 500);
  }
  if (typeof data === "string" && data.length > 0) return data.slice(0, 500);
  return fallback;
}

/** Retry-After is delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value === null || value === undefined || value.trim() === "") return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

function networkCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && typeof current === "object" && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && NETWORK_CODES.has(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Maps anything the Qdrant client throws to what the pipeline understands (see pipeline/retry-policy):
 * - transient (network, timeout, 5xx, 429 with its Retry-After, 408, 401/403 until the key is fixed)
 *   → ProcessingError retryable;
 * - missing collection (404) → AppError collection_not_found;
 * - vector size mismatch (400 naming a dimension) → AppError dimension_mismatch;
 * - other 4xx (the request does not fit Qdrant's schema) → ProcessingError permanent, with Qdrant's message.
 */
export function classifyQdrantError(error: unknown, ctx: QdrantCallContext): AppError | ProcessingError {
  if (error instanceof AppError || error instanceof ProcessingError) return error;
  const where =
    ctx.collection === ""
      ? `Qdrant ${ctx.operation}`
      : `Qdrant ${ctx.operation} on collection "${ctx.collection}"`;
  const name = error instanceof Error ? error.name : "";
  const text = error instanceof Error ? error.message : String(error);

  if (name === "QdrantClientTimeoutError" || name === "AbortError" || name === "TimeoutError") {
    return new ProcessingError(`${where} timed out after ${ctx.timeoutMs} ms`, {
      retryable: true,
      cause: error,
    });
  }
  if (name === "QdrantClientResourceExhaustedError") {
    // The client reads only the first character of Retry-After (1.18.0), so this may undershoot;
    // the pipeline's own backoff still applies on top.
    const seconds = (error as { retry_after?: unknown }).retry_after;
    const retryAfterMs = typeof seconds === "number" && Number.isFinite(seconds) ? seconds * 1000 : undefined;
    return new ProcessingError(`${where} was rate limited (HTTP 429): ${text}`, {
      retryable: true,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      cause: error,
    });
  }
  if (/Invalid retryAfter value/.test(text)) {
    // The client's 429 handling chokes on an HTTP-date Retry-After: still a 429.
    return new ProcessingError(`${where} was rate limited (HTTP 429): ${text}`, {
      retryable: true,
      cause: error,
    });
  }
  if (isApiError(error)) {
    const status = error.status;
    const message = qdrantMessage(error.data, error.statusText || `HTTP ${status}`);
    const full = `${where} failed: HTTP ${status}: ${message}`;
    if (status === 429) {
      const retryAfterMs = parseRetryAfter(error.headers?.get("retry-after"));
      return new ProcessingError(full, {
        retryable: true,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
        cause: error,
      });
    }
    if (status >= 500 || status === 408 || status === 401 || status === 403) {
      return new ProcessingError(full, { retryable: true, cause: error });
    }
    if (status === 404 && /collection/i.test(message)) {
      return new AppError("collection_not_found", `Collection "${ctx.collection}" does not exist (${full})`, {
        details: { collection: ctx.collection },
        cause: error,
      });
    }
    if ((status === 400 || status === 422) && /dimension|vector size|expected dim/i.test(message)) {
      return new AppError("dimension_mismatch", full, {
        details: { collection: ctx.collection, qdrant: message },
        cause: error,
      });
    }
    return new ProcessingError(full, { retryable: false, cause: error });
  }
  const code = networkCode(error);
  if (code !== undefined || (error instanceof TypeError && /fetch failed/i.test(text))) {
    return new ProcessingError(`${where} failed: Qdrant unreachable (${code ?? text})`, {
      retryable: true,
      cause: error,
    });
  }
  return new ProcessingError(`${where} failed: ${text}`, { retryable: true, cause: error });
}

/** True for the 404 a missing collection answers. */
export function isCollectionNotFound(error: unknown): boolean {
  return error instanceof AppError && error.code === "collection_not_found";
}

/** True for the 409 (or 400 "already exists") a concurrent create answers. */
export function isAlreadyExists(error: unknown): boolean {
  if (!isApiError(error)) return false;
  const message = qdrantMessage(error.data, "");
  return error.status === 409 || (error.status === 400 && /already exists/i.test(message));
}
