import { backoffMs } from "../../domain/backoff.js";
import type { EmbedKind } from "../../domain/types.js";
import type { RemoteEmbedderMetrics } from "../embedder-metrics.js";
import { normalizeRows } from "../pooling.js";
import { EngineHealth } from "./engine-health.js";
import type { EngineProtocol } from "./engine-protocol.js";
import { failureFromNetwork, failureFromResponse, RemoteFailure } from "./remote-failure.js";
import type { RequestScheduler } from "./request-scheduler.js";

/**
 * Failures tolerated within one call before its batch goes back to the queue: a request is sent again at
 * most this many times, and once the engine has failed more often than this in a row (any requests, no
 * success between) it is down or throttling hard, and every call gives up.
 */
export const IN_CALL_RETRIES = 2;
/** A Retry-After longer than this is waited for in the queue, not while holding the batch. */
const IN_CALL_MAX_WAIT_MS = 30_000;

export interface EngineConnectionOptions {
  apiKey: string | undefined;
  /** Timeout of one HTTP request. */
  timeoutMs: number;
  /** Backoff of requests sent again within a call (RETRY_BASE_MS, RETRY_MAX_MS). */
  retryBaseMs: number;
  retryMaxMs: number;
}

export interface EngineLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** Where one request goes and how its answer is read: the engine's protocol, its scheduler, the profile's normalisation. */
export interface EngineTarget {
  scheduler: RequestScheduler;
  protocol: EngineProtocol;
  normalize: boolean;
}

/**
 * The remote embedder's HTTP side: one request at a time through the scheduler, with the key, the
 * timeout, the engine's health and metrics, the pause a 429 or an outage imposes on every request,
 * and the dimension check. RemoteEmbedder decides what to send; this sends it.
 */
export class EngineConnection {
  readonly health = new EngineHealth();
  /** The vectors' dimension, from the first answer (the warm-up); every later answer must match it. */
  dimension: number | null = null;
  private readonly closing = new AbortController();
  /** Failed requests since the last success: the backoff of the next pause grows with it. */
  private consecutiveFailures = 0;

  constructor(
    private readonly options: EngineConnectionOptions,
    private readonly logger?: EngineLogger,
    private readonly metrics?: RemoteEmbedderMetrics,
  ) {}

  /** Aborts every request and wait in progress with `reason`. */
  close(reason: unknown): void {
    this.closing.abort(reason);
  }

  /** Waits `ms` unless the connection closes first (then rejects with the close reason). */
  sleep(ms: number): Promise<void> {
    return abortableSleep(ms, this.closing.signal);
  }

  /** Equal jitter, as the queue's retries: a failing engine waits at least half the step. */
  backoff(failures: number): number {
    return backoffMs(failures, this.options.retryBaseMs, this.options.retryMaxMs, "equal");
  }

  /**
   * One request through the scheduler, sent again after a 429 or an outage (after the pause it imposes,
   * ahead of requests not yet sent) within IN_CALL_RETRIES. Giving up aborts `giveUp`, so the call's
   * requests still waiting never go.
   */
  async send(
    target: EngineTarget,
    inputs: string[],
    tokens: number,
    kind: EmbedKind,
    giveUp: AbortController,
    retries = IN_CALL_RETRIES,
  ): Promise<Float32Array[]> {
    const { scheduler, protocol } = target;
    for (let attempt = 0; ; attempt++) {
      const release = await scheduler.acquire(tokens, {
        urgent: kind === "query",
        retry: attempt > 0,
        signal: AbortSignal.any([giveUp.signal, this.closing.signal]),
      });
      const started = performance.now();
      try {
        const answer = await this.fetchJson(protocol.url, "POST", protocol.body(inputs), protocol.endpoint);
        const vectors = this.checked(protocol.vectors(answer, inputs.length), protocol.endpoint);
        const ms = performance.now() - started;
        if (this.consecutiveFailures > 0) {
          this.logger?.info(
            { afterFailures: this.consecutiveFailures },
            "remote embedding engine answers again",
          );
        }
        this.consecutiveFailures = 0;
        this.health.succeeded(ms, tokens);
        this.metrics?.request("ok", ms / 1000, inputs.length, tokens);
        if (target.normalize) for (const vector of vectors) normalizeRows(vector, vector.length);
        return vectors;
      } catch (error) {
        if (!(error instanceof RemoteFailure)) throw error;
        const ms = performance.now() - started;
        this.metrics?.request(error.kind, ms / 1000, inputs.length, tokens);
        this.health.failed(error.kind, error.message, ms);
        if (error.kind === "rejected") {
          this.logger?.warn(
            { err: error.message, inputs: inputs.length },
            "remote embedding engine refused a request",
          );
          throw error;
        }
        // One line when trouble starts, one when it ends ("answers again"), not one per request.
        if (this.consecutiveFailures === 0) {
          this.logger?.warn(
            { err: error.message },
            `remote embedding engine ${error.kind.replace("_", " ")}`,
          );
        }
        // The engine is limiting or failing for every request, not just this one: pause them all.
        const wait = error.retryAfterMs ?? this.backoff(this.consecutiveFailures);
        this.consecutiveFailures += 1;
        scheduler.pauseUntil(Date.now() + wait);
        if (attempt >= retries || this.consecutiveFailures > IN_CALL_RETRIES || wait > IN_CALL_MAX_WAIT_MS) {
          giveUp.abort(error);
          throw error;
        }
      } finally {
        release();
      }
    }
  }

  /** One HTTP call with the key and the timeout; a failure becomes a RemoteFailure saying what kind. */
  async fetchJson(url: string, method: "GET" | "POST", body: unknown, endpoint: string): Promise<unknown> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    let response: Response;
    let text: string;
    try {
      const signal = AbortSignal.any([AbortSignal.timeout(this.options.timeoutMs), this.closing.signal]);
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
      text = await response.text();
    } catch (error) {
      if (this.closing.signal.aborted) throw this.closing.signal.reason;
      throw failureFromNetwork(error, endpoint, this.options.timeoutMs);
    }
    if (!response.ok) throw failureFromResponse(response.status, text, response.headers, endpoint);
    try {
      return JSON.parse(text);
    } catch {
      throw new RemoteFailure(
        "unavailable",
        `${endpoint} answered 200 with a body that is not JSON`,
        200,
        undefined,
      );
    }
  }

  /** Every vector must have the dimension the engine gave at start-up; another means its model changed. */
  private checked(vectors: Float32Array[], endpoint: string): Float32Array[] {
    const expected = this.dimension;
    const wrong = expected === null ? undefined : vectors.find((v) => v.length !== expected);
    if (wrong) {
      throw new RemoteFailure(
        "unavailable",
        `${endpoint} returned ${wrong.length}-dimensional vectors, ${expected} at start-up: its model changed; restart this server to adopt the new model (a model change: chunks are embedded again on re-ingest)`,
        200,
        undefined,
      );
    }
    return vectors;
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
