import { AppError } from "../../domain/errors.js";

/** Redis refuses writes for lack of room: maxmemory reached (noeviction), or it cannot persist (disk). */
const FULL_REPLY = /^(OOM|MISCONF)\b/;
/** Replies of a Redis that is there but cannot serve now (loading, failing over, misconfigured auth). */
const UNAVAILABLE_REPLY =
  /^(LOADING|BUSY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|READONLY|NOREPLICAS|NOAUTH|WRONGPASS)\b/;
/** What ioredis and BullMQ say when there is no usable connection. */
const NO_CONNECTION =
  /enableOfflineQueue options is false|Connection is closed|Command timed out|max retries per request|None of startup nodes is available|Failed to refresh slots cache|Cluster isn't ready/i;
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

const FULL_RETRY_AFTER_SECONDS = 30;
const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

/**
 * Failures of the Redis queue that are about Redis, not the request: no connection (down, frozen,
 * unreachable; commands time out or are refused at once) and refusing replies make the queue
 * unavailable (503); a Redis out of memory or unable to persist is `insufficient_storage` (507).
 * Anything else (a script error) is a bug and is left alone: undefined.
 */
export function classifyRedisError(error: unknown): AppError | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = (error as { code?: unknown }).code;
  if (FULL_REPLY.test(error.message)) {
    return new AppError("insufficient_storage", `The queue's Redis cannot store more: ${error.message}`, {
      retryAfterSeconds: FULL_RETRY_AFTER_SECONDS,
      cause: error,
    });
  }
  if (
    UNAVAILABLE_REPLY.test(error.message) ||
    NO_CONNECTION.test(error.message) ||
    error.name === "MaxRetriesPerRequestError" ||
    (typeof code === "string" && NETWORK_CODES.has(code))
  ) {
    return new AppError("queue_unavailable", `The queue (Redis) is unavailable: ${plainly(error.message)}`, {
      retryAfterSeconds: UNAVAILABLE_RETRY_AFTER_SECONDS,
      cause: error,
    });
  }
  return undefined;
}

/** ioredis's wording, for someone who has not read its options. */
function plainly(message: string): string {
  if (/enableOfflineQueue options is false/.test(message)) return `not connected to Redis (${message})`;
  if (/Command timed out/.test(message)) return `Redis did not answer in time (${message})`;
  return message;
}
