import { AppError, type ErrorCode, ProcessingError } from "../domain/errors.js";

export interface BackendGuardOptions {
  /** Named in messages: "the queue", "the vector store", "the embedder". */
  label: string;
  /** The code of "not available now" for this backend (queue_unavailable, store_unavailable, ...). */
  unavailable: ErrorCode;
  /** The adapter's own failures read as catalog errors (SQLite, Redis); undefined = not one of those. */
  classify?: (error: unknown) => AppError | undefined;
  /** How long one call may take before the request is answered 503; none = as long as it takes. */
  timeoutMs?: number;
  /** Told after every call: the backend answered (null), or failed with this error. */
  onOutcome?: (failure: AppError | null) => void;
}

const RETRY_AFTER_SECONDS = 5;

/**
 * The queue, the store or the embedder as the HTTP path sees it: every method's failure that is the
 * backend's (down, timed out, full), not the request's or a bug, becomes the catalog's error with a
 * Retry-After, so a client gets 503 `queue_unavailable` (or 507 `insufficient_storage`), never a bare
 * 500; and with `timeoutMs`, no call holds a request longer than that (the call itself may still
 * finish later: a write answered 503 this way may have happened, which is why ingest clients repeat
 * with the same Idempotency-Key).
 *
 * A Proxy, so that every method the interface has or gets is covered without listing them; only the
 * HTTP path uses the guarded object (the pipeline keeps its own retry policy).
 */
export function guardBackend<T extends object>(target: T, options: BackendGuardOptions): T {
  return new Proxy(target, {
    get(object, property) {
      const value: unknown = Reflect.get(object, property, object);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        let result: unknown;
        try {
          result = value.apply(object, args);
        } catch (error) {
          return guarded(() => Promise.reject(error), options);
        }
        // A synchronous answer (the embedder's status() and info()) stays synchronous: a backend that
        // answered at once is not down, and a caller reading it must not get a Promise instead.
        return isPromiseLike(result) ? guarded(() => result, options) : result;
      };
    },
  });
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === "object" || typeof value === "function") &&
    value !== null &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

async function guarded<R>(call: () => R | Promise<R>, options: BackendGuardOptions): Promise<R> {
  let timer: NodeJS.Timeout | undefined;
  try {
    // The executor runs `call` at once and turns a synchronous throw into a rejection.
    const result = new Promise<R>((resolve) => resolve(call()));
    // After a timeout nobody awaits the call any more; its late failure must not go unhandled.
    result.catch(() => {});
    const outcome =
      options.timeoutMs === undefined
        ? await result
        : await Promise.race([
            result,
            new Promise<never>((_, reject) => {
              timer = setTimeout(() => reject(timedOut(options)), options.timeoutMs);
            }),
          ]);
    options.onOutcome?.(null);
    return outcome;
  } catch (error) {
    const failure = backendFailure(error, options);
    if (failure === undefined) {
      // The backend answered: a refusal of the request (not found, dimension mismatch) or a bug.
      if (error instanceof AppError) options.onOutcome?.(null);
      throw error;
    }
    options.onOutcome?.(failure);
    throw failure;
  } finally {
    clearTimeout(timer);
  }
}

function backendFailure(error: unknown, options: BackendGuardOptions): AppError | undefined {
  if (error instanceof AppError) {
    return error.code === options.unavailable || error.code === "insufficient_storage" ? error : undefined;
  }
  const classified = options.classify?.(error);
  if (classified !== undefined) return classified;
  // Adapters mark what retrying can fix (network, timeouts, 5xx, a restarting worker) as retryable.
  if (error instanceof ProcessingError && error.retryable) {
    return new AppError(
      options.unavailable,
      `${capitalised(options.label)} is unavailable: ${error.message}`,
      {
        retryAfterSeconds: Math.max(RETRY_AFTER_SECONDS, Math.ceil((error.retryAfterMs ?? 0) / 1000)),
        cause: error,
      },
    );
  }
  return undefined;
}

function timedOut(options: BackendGuardOptions): AppError {
  return new AppError(
    options.unavailable,
    `${capitalised(options.label)} did not answer within ${options.timeoutMs} ms (BACKEND_TIMEOUT_MS)`,
    { retryAfterSeconds: RETRY_AFTER_SECONDS },
  );
}

function capitalised(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
