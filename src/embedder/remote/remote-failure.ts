import type { FailureKind } from "../embedder-metrics.js";

export type { FailureKind };

export class RemoteFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    /** HTTP status, or null when no answer came (connection refused, time-out). */
    readonly status: number | null,
    /** When the engine said to come back (Retry-After), in ms from now. */
    readonly retryAfterMs: number | undefined,
  ) {
    super(message);
    this.name = "RemoteFailure";
  }
}

/** Retry-After in ms: OpenAI's `retry-after-ms`, or `retry-after` as seconds or an HTTP date. */
export function retryAfterMs(headers: Headers, now = Date.now()): number | undefined {
  const ms = Number(headers.get("retry-after-ms"));
  if (headers.get("retry-after-ms") !== null && Number.isFinite(ms) && ms >= 0) return ms;
  const value = headers.get("retry-after");
  if (value === null || value.trim() === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return seconds >= 0 ? seconds * 1000 : undefined;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * The engine's own words from an error body: OpenAI/vLLM/this server `{"error":{"message"}}`, TEI
 * `{"error":"..."}`, TEI's OpenAI route `{"message"}`, FastAPI engines (Infinity) `{"detail"}`.
 */
export function engineMessage(body: string): string {
  try {
    const parsed: unknown = JSON.parse(body);
    const found = messageIn(parsed);
    if (found) return found;
  } catch {
    // not JSON: the text itself
  }
  const text = body.trim();
  return text.length > 500 ? `${text.slice(0, 500)}…` : text || "(empty body)";
}

function messageIn(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return value.map(messageIn).filter(Boolean).join("; ") || undefined;
  if (typeof value !== "object" || value === null) return undefined;
  for (const key of ["error", "message", "detail", "msg"]) {
    const found = messageIn(Reflect.get(value, key));
    if (found) return found;
  }
  return undefined;
}

export function failureFromResponse(
  status: number,
  body: string,
  headers: Headers,
  endpoint: string,
): RemoteFailure {
  const message = `${endpoint} answered ${status}: ${engineMessage(body)}`;
  const after = retryAfterMs(headers);
  if (status === 429) return new RemoteFailure("rate_limited", message, status, after);
  const engineSide = status === 408 || status === 424 || status >= 500 || [401, 403, 404].includes(status);
  return new RemoteFailure(engineSide ? "unavailable" : "rejected", message, status, after);
}

/** fetch's network errors carry the cause (ECONNREFUSED, …) one level down. */
export function failureFromNetwork(error: unknown, endpoint: string, timeoutMs: number): RemoteFailure {
  if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) {
    return new RemoteFailure(
      "unavailable",
      `${endpoint} did not answer within ${timeoutMs} ms`,
      null,
      undefined,
    );
  }
  // fetch says only "fetch failed"; its cause says what happened ("connect ECONNREFUSED …", "other side closed").
  const cause = error instanceof Error ? error.cause : undefined;
  const reason =
    cause instanceof Error
      ? `${String(Reflect.get(cause, "code") ?? cause.name)} (${cause.message})`
      : error instanceof Error
        ? error.message
        : String(error);
  return new RemoteFailure("unavailable", `${endpoint} unreachable: ${reason}`, null, undefined);
}
