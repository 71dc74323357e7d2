import type { AppError } from "../domain/errors.js";

/** The backends a request can wait on, besides the model. */
export type BackendName = "queue" | "store";

interface State {
  /** When the current run of failures began; null while the backend answers. */
  failingSince: number | null;
  lastFailure: AppError | null;
  /** Until when a write refused for lack of space (507) says not to send more. */
  fullUntil: number;
  lastFull: AppError | null;
}

export interface BackendReport {
  ok: boolean;
  failing_since?: string;
  error?: { code: string; message: string };
}

/**
 * What the HTTP path has seen of the queue and the store: whether they answer (a run of failures:
 * unreachable, timed out, locked) and since when, and whether the last write was refused for lack
 * of space. Fed by every guarded call (backend-guard.ts) and the probes of GET /ready; read by /ready
 * and /v1/status.
 */
export class BackendHealth {
  private readonly states: Record<BackendName, State> = {
    queue: { failingSince: null, lastFailure: null, fullUntil: 0, lastFull: null },
    store: { failingSince: null, lastFailure: null, fullUntil: 0, lastFull: null },
  };

  constructor(private readonly now: () => number = Date.now) {}

  answered(name: BackendName): void {
    this.states[name] = { ...this.states[name], failingSince: null, lastFailure: null };
  }

  failed(name: BackendName, failure: AppError): void {
    const state = this.states[name];
    if (failure.code === "insufficient_storage") {
      // It answered: it is reachable, only full. Reads go on working, so only time clears this.
      const until = this.now() + (failure.retryAfterSeconds ?? 0) * 1000;
      this.states[name] = {
        ...state,
        failingSince: null,
        lastFailure: null,
        fullUntil: until,
        lastFull: failure,
      };
      return;
    }
    this.states[name] = { ...state, failingSince: state.failingSince ?? this.now(), lastFailure: failure };
  }

  /** True once the backend has failed without a break for at least `ms`. */
  failingFor(name: BackendName, ms: number): boolean {
    const since = this.states[name].failingSince;
    return since !== null && this.now() - since >= ms;
  }

  /** The 507 that says not to send more yet, while its Retry-After lasts. */
  outOfSpace(name: BackendName): AppError | null {
    const state = this.states[name];
    return this.now() < state.fullUntil ? state.lastFull : null;
  }

  report(name: BackendName): BackendReport {
    const { failingSince, lastFailure } = this.states[name];
    if (failingSince === null || lastFailure === null) return { ok: true };
    return {
      ok: false,
      failing_since: new Date(failingSince).toISOString(),
      error: { code: lastFailure.code, message: lastFailure.message },
    };
  }
}
