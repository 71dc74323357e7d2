import type { AppDeps } from "./app-deps.js";

export interface QueueStorage {
  ok: boolean;
  /** Bytes left, where they can be measured (the SQLite file). */
  free_bytes?: number;
  problem?: string;
}

/**
 * Whether the queue has room to store what clients send, for the status routes' `available`. The
 * SQLite file's room is measured: below twice BODY_LIMIT_BYTES one more large request may not fit.
 * Redis's cannot be (its memory and disk are the server's): a write refused for lack of space (507)
 * is remembered for its Retry-After instead.
 */
export function queueStorage(deps: AppDeps): QueueStorage {
  const needed = 2 * deps.limits.bodyLimitBytes;
  const free = measured(deps);
  if (free !== undefined) {
    if (free >= needed) return { ok: true, free_bytes: free };
    return {
      ok: false,
      free_bytes: free,
      problem: `insufficient storage: ${free} bytes left for the queue, less than twice BODY_LIMIT_BYTES (${needed}); free disk space in DATA_DIR`,
    };
  }
  const refused = deps.health.outOfSpace("queue");
  return refused ? { ok: false, problem: refused.message } : { ok: true };
}

/** The measured room, or undefined where it cannot be measured now (then the 507s remembered decide). */
function measured(deps: AppDeps): number | undefined {
  try {
    return deps.queueFreeBytes?.();
  } catch {
    return undefined;
  }
}
