import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { EmbedderStatus } from "../embedder/embedder.js";
import type { FailureKind, RemoteEmbedderMetrics } from "../embedder/embedder-metrics.js";

const PREFIX = "rag_embed_remote_";

/**
 * The `rag_embed_remote_*` metrics of a remote embedding engine, in the server's registry: requests by
 * outcome and their latency, 429s, what was sent, texts served from the finished-vector cache, and at
 * scrape time the effective rate over the last minute (what the provider's per-minute limits count).
 */
export class RemoteEmbedderPrometheus implements RemoteEmbedderMetrics {
  private readonly requests: Counter<"outcome">;
  private readonly rateLimited: Counter;
  private readonly seconds: Histogram<"outcome">;
  private readonly inputs: Counter;
  private readonly tokens: Counter;
  private readonly hits: Counter;
  private status: (() => EmbedderStatus) | null = null;

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: `${PREFIX}requests_total`,
      help: "Requests to the remote engine by outcome: ok, rate_limited (429), unavailable (down, 5xx, time-out), rejected (4xx for the input)",
      labelNames: ["outcome"] as const,
      registers,
    });
    this.rateLimited = new Counter({
      name: `${PREFIX}rate_limited_total`,
      help: "429 answers from the remote engine (each retried after its Retry-After)",
      registers,
    });
    this.seconds = new Histogram({
      name: `${PREFIX}request_duration_seconds`,
      help: "Latency of one request to the remote engine, by outcome",
      labelNames: ["outcome"] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.inputs = new Counter({
      name: `${PREFIX}inputs_total`,
      help: "Texts embedded by the remote engine (windows of split chunks count one each)",
      registers,
    });
    this.tokens = new Counter({
      name: `${PREFIX}tokens_total`,
      help: "Tokens embedded by the remote engine, as counted here (see token_counter in /model-info)",
      registers,
    });
    this.hits = new Counter({
      name: `${PREFIX}cache_hits_total`,
      help: "Texts not sent again because the engine had already embedded them (a retried or isolated batch)",
      registers,
    });
    const status = () => this.status?.();
    const gauge = (name: string, help: string, pick: (s: EmbedderStatus) => unknown) =>
      new Gauge({
        name: `${PREFIX}${name}`,
        help,
        registers,
        collect() {
          const current = status();
          const value = current && pick(current);
          if (typeof value === "number") this.set(value);
        },
      });
    gauge(
      "requests_last_minute",
      "Requests answered by the remote engine in the last 60 s (the effective rate per minute)",
      (s) => s.details?.requestsLastMinute,
    );
    gauge(
      "tokens_last_minute",
      "Tokens embedded by the remote engine in the last 60 s (the effective rate per minute)",
      (s) => s.details?.tokensLastMinute,
    );
    gauge("in_flight", "Requests to the remote engine in flight", (s) => s.details?.inFlight);
    gauge(
      "waiting",
      "Requests waiting for a concurrency slot, the rate limits or the end of a pause",
      (s) => s.details?.waiting,
    );
    gauge(
      "up",
      "1 while the remote engine answers (rate-limiting included), 0 while it is unavailable or not reached yet",
      (s) => (s.state === "ok" || s.state === "rate_limited" ? 1 : 0),
    );
  }

  /** Where the rate gauges read from at scrape time (the embedder, once it exists). */
  observe(status: () => EmbedderStatus): void {
    this.status = status;
  }

  request(outcome: "ok" | FailureKind, seconds: number, inputs: number, tokens: number): void {
    this.requests.inc({ outcome });
    this.seconds.observe({ outcome }, seconds);
    if (outcome === "rate_limited") this.rateLimited.inc();
    if (outcome === "ok") {
      this.inputs.inc(inputs);
      this.tokens.inc(tokens);
    }
  }

  cacheHits(count: number): void {
    this.hits.inc(count);
  }
}
