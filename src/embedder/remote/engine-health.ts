/**
 * What the remote engine has been doing lately, for GET /v1/status and the rate gauges: whether it
 * answers (and since when it has not), its last error, and over the last minute its latency, 429s and
 * the effective request and token rate.
 */
import type { FailureKind } from "./remote-failure.js";

const WINDOW_MS = 60_000;

interface Sample {
  at: number;
  ms: number;
  tokens: number;
  ok: boolean;
  rateLimited: boolean;
}

export type EngineState = "starting" | "ok" | "rate_limited" | "unavailable";

export interface EngineHealthSnapshot {
  state: EngineState;
  lastError: string | null;
  lastErrorAt: string | null;
  /** Start of the current run of failed requests; null once a request succeeds. */
  failingSince: string | null;
  lastSuccessAt: string | null;
  /** Requests answered (any way) in the last 60 s: the effective request rate per minute. */
  requestsLastMinute: number;
  /** Tokens of the requests that succeeded in the last 60 s: the effective token rate per minute. */
  tokensLastMinute: number;
  rateLimitedLastMinute: number;
  rateLimitedTotal: number;
  /** Mean and worst latency of the last 60 s of requests, ms; null without any. */
  latencyMs: { mean: number; max: number } | null;
}

export class EngineHealth {
  private samples: Sample[] = [];
  private state: EngineState = "starting";
  private lastError: { message: string; at: number } | null = null;
  private failingSince: number | null = null;
  private lastSuccess: number | null = null;
  private rateLimitedTotal = 0;

  constructor(private readonly now: () => number = Date.now) {}

  succeeded(ms: number, tokens: number): void {
    const at = this.now();
    this.record({ at, ms, tokens, ok: true, rateLimited: false });
    this.state = "ok";
    this.failingSince = null;
    this.lastSuccess = at;
  }

  /** A request failed; `kind` rejected (the engine refused the input) says nothing about its health. */
  failed(kind: FailureKind, message: string, ms: number): void {
    const at = this.now();
    const rateLimited = kind === "rate_limited";
    if (rateLimited) this.rateLimitedTotal += 1;
    this.record({ at, ms, tokens: 0, ok: false, rateLimited });
    this.lastError = { message, at };
    if (kind === "rejected") return;
    this.state = kind;
    this.failingSince ??= at;
  }

  snapshot(): EngineHealthSnapshot {
    this.prune(this.now());
    const done = this.samples;
    const iso = (time: number | null | undefined) => (time == null ? null : new Date(time).toISOString());
    return {
      state: this.state,
      lastError: this.lastError?.message ?? null,
      lastErrorAt: iso(this.lastError?.at),
      failingSince: iso(this.failingSince),
      lastSuccessAt: iso(this.lastSuccess),
      requestsLastMinute: done.length,
      tokensLastMinute: done.reduce((sum, s) => sum + s.tokens, 0),
      rateLimitedLastMinute: done.filter((s) => s.rateLimited).length,
      rateLimitedTotal: this.rateLimitedTotal,
      latencyMs:
        done.length === 0
          ? null
          : {
              mean: Math.round(done.reduce((sum, s) => sum + s.ms, 0) / done.length),
              max: Math.round(Math.max(...done.map((s) => s.ms))),
            },
    };
  }

  private record(sample: Sample): void {
    this.samples.push(sample);
    this.prune(sample.at);
  }

  private prune(now: number): void {
    const first = this.samples.findIndex((s) => s.at > now - WINDOW_MS);
    if (first !== 0) this.samples = first < 0 ? [] : this.samples.slice(first);
  }
}
