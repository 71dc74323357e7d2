import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { PipelineMetrics } from "../pipeline/ingest-pipeline.js";
import type { JobQueue, QueueStats } from "../queue/job-queue.js";

/** Observations the HTTP layer makes (accepted chunks, requests); the pipeline's are PipelineMetrics. */
export interface HttpMetrics {
  requestServed(method: string, route: string, status: number, seconds: number): void;
}

const PREFIX = "rag_embed_";

/**
 * The server's Prometheus registry: Node/process defaults plus the `rag_embed_*` metrics. One
 * registry per server instance (never prom-client's global one), so two servers in one process,
 * as in tests, do not share counters.
 *
 * Queue depth is read from the queue's own stats at scrape time, so it is the queue's truth (across
 * every process sharing it), not a counter this process keeps.
 */
export class Metrics implements PipelineMetrics, HttpMetrics {
  readonly registry = new Registry();
  private queueStats: (() => Promise<QueueStats>) | null = null;
  /** One stats call per scrape even though several gauges read it. */
  private pendingStats: Promise<QueueStats> | null = null;

  private readonly accepted: Counter<"collection">;
  private readonly stored: Counter<"collection">;
  private readonly unchanged: Counter<"collection">;
  private readonly superseded: Counter<"collection">;
  private readonly cancelled: Counter<"collection">;
  private readonly failed: Counter<"collection">;
  private readonly dead: Counter<"collection">;
  private readonly tokensEmbedded: Counter;
  private readonly batchChunks: Histogram;
  private readonly batchTokens: Histogram;
  private readonly embedTexts: Histogram;
  private readonly embedSeconds: Histogram;
  private readonly storeSeconds: Histogram;
  private readonly httpRequests: Counter<"method" | "route" | "status">;
  private readonly httpSeconds: Histogram<"method" | "route">;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    const scrapeStats = () => this.scrapeStats();
    const fromStats = (name: string, help: string, pick: (s: QueueStats) => number) =>
      new Gauge({
        name: `${PREFIX}${name}`,
        help,
        registers,
        async collect() {
          const stats = await scrapeStats();
          if (stats) this.set(pick(stats));
        },
      });
    // The two depth gauges are what an autoscaler reads (deploy/keda-scaledobject.yaml): every API
    // and worker process reports the same shared queue, so any one of them can be scraped.
    fromStats(
      "queue_pending_chunks",
      "Chunks accepted and not yet stored, unchanged or dead (queued + running), in the whole queue",
      (s) => s.pending,
    );
    fromStats("queue_running_chunks", "Chunks reserved by a worker right now", (s) => s.running);
    fromStats(
      "queue_pending_tokens",
      "Model tokens of the pending chunks, in the whole queue (an upper estimate made at admission)",
      (s) => s.pendingTokens,
    );
    fromStats("dead_letters", "Dead letters waiting for replay or discard", (s) => s.dead);

    const counter = (name: string, help: string) =>
      new Counter({ name: `${PREFIX}${name}`, help, labelNames: ["collection"] as const, registers });
    this.accepted = counter("chunks_accepted_total", "Chunks accepted (durably queued) by this process");
    this.stored = counter("chunks_stored_total", "Chunks embedded and stored by this process");
    this.unchanged = counter(
      "chunks_unchanged_total",
      "Chunks skipped because an identical point was already stored",
    );
    this.superseded = counter(
      "chunks_superseded_total",
      "Chunks not written because a newer version of the same chunk id was already stored",
    );
    this.cancelled = counter(
      "chunks_cancelled_total",
      "Chunks not written because their document was deleted after they were accepted",
    );
    this.failed = counter("chunks_failed_total", "Chunk attempts that failed and were scheduled for a retry");
    this.dead = counter("chunks_dead_total", "Chunks that became dead letters (retries ran out)");
    this.tokensEmbedded = new Counter({
      name: `${PREFIX}tokens_embedded_total`,
      help: "Model tokens embedded by the pipeline (prefix and special tokens included)",
      registers,
    });
    this.batchChunks = new Histogram({
      name: `${PREFIX}batch_chunks`,
      help: "Chunks per reservation taken from the queue",
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers,
    });
    this.batchTokens = new Histogram({
      name: `${PREFIX}batch_tokens`,
      help: "Model tokens embedded per slice of a reservation (COMMIT_SLICE_TOKENS)",
      buckets: [64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536],
      registers,
    });
    this.embedTexts = new Histogram({
      name: `${PREFIX}embed_batch_texts`,
      help: "Texts per embedder call (chunks not skipped as unchanged)",
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers,
    });
    this.embedSeconds = new Histogram({
      name: `${PREFIX}embed_duration_seconds`,
      help: "Time to embed one slice of a reservation",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.storeSeconds = new Histogram({
      name: `${PREFIX}store_duration_seconds`,
      help: "Time to write one slice's points and acknowledge them",
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.httpRequests = new Counter({
      name: `${PREFIX}http_requests_total`,
      help: "HTTP requests answered, by route template and status",
      labelNames: ["method", "route", "status"] as const,
      registers,
    });
    this.httpSeconds = new Histogram({
      name: `${PREFIX}http_request_duration_seconds`,
      help: "HTTP request duration by route template",
      labelNames: ["method", "route"] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
  }

  /** Where the queue-depth gauges read from at scrape time. */
  observeQueue(stats: () => Promise<QueueStats>): void {
    this.queueStats = stats;
  }

  /** Prometheus text exposition of everything in the registry. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    try {
      return { contentType: this.registry.contentType, body: await this.registry.metrics() };
    } finally {
      this.pendingStats = null;
    }
  }

  private async scrapeStats(): Promise<QueueStats | null> {
    if (!this.queueStats) return null;
    this.pendingStats ??= this.queueStats();
    return this.pendingStats;
  }

  acceptedChunks(collection: string, count: number): void {
    this.accepted.inc({ collection }, count);
  }

  // PipelineMetrics
  batchReserved(chunks: number): void {
    this.batchChunks.observe(chunks);
  }
  embedded(texts: number, tokens: number, seconds: number): void {
    this.embedTexts.observe(texts);
    this.batchTokens.observe(tokens);
    this.tokensEmbedded.inc(tokens);
    this.embedSeconds.observe(seconds);
  }
  committed(seconds: number): void {
    this.storeSeconds.observe(seconds);
  }
  outcome(
    collection: string,
    state: "stored" | "unchanged" | "superseded" | "cancelled" | "failed" | "dead",
    count: number,
  ): void {
    if (count <= 0) return;
    const counter = {
      stored: this.stored,
      unchanged: this.unchanged,
      superseded: this.superseded,
      cancelled: this.cancelled,
      failed: this.failed,
      dead: this.dead,
    }[state];
    counter.inc({ collection }, count);
  }

  // HttpMetrics
  requestServed(method: string, route: string, status: number, seconds: number): void {
    this.httpRequests.inc({ method, route, status: String(status) });
    this.httpSeconds.observe({ method, route }, seconds);
  }
}

/**
 * The queue as the HTTP layer's admission sees it, counting accepted chunks per collection and
 * telling `onAccepted` about each accepted job. Every other method is the queue's own.
 */
export function observeEnqueue(
  queue: JobQueue,
  onAccepted: (collection: string, jobId: string, count: number) => void,
): JobQueue {
  const enqueue: JobQueue["enqueue"] = async (request) => {
    const result = await queue.enqueue(request);
    if (result.accepted && !result.duplicate) onAccepted(request.collection, result.jobId, result.count);
    return result;
  };
  return new Proxy(queue, {
    get(target, property) {
      if (property === "enqueue") return enqueue;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
