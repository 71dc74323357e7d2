import { RagEmbedError } from "./errors.js";
import { backoffMs, parseRetryAfter, retryDelayMs, sleep } from "./retry.js";
import type {
  Chunk,
  CollectionInfo,
  CollectionVersions,
  CutoverCheck,
  CutoverDone,
  DeadLetterPage,
  DeadLetterQueryOptions,
  DeadLetterSelector,
  DocumentDeleted,
  DocumentList,
  DocumentReplaceAccepted,
  EmbeddingsBody,
  EmbeddingsResult,
  ErrorBody,
  IngestAccepted,
  Job,
  JobQueryOptions,
  ModelDescription,
  ModelList,
  NativeIngestBody,
  OverflowPolicy,
  Ready,
  ReembedAccepted,
  SearchBody,
  SearchFilter,
  SearchResult,
  SeedStatus,
  ServerStatus,
  VersionDeleted,
  VersionSwap,
} from "./types.js";

export interface RagEmbedClientOptions {
  /** e.g. `http://127.0.0.1:8000` */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** A fetch implementation (default: the global one), e.g. to instrument or proxy requests. */
  fetch?: typeof fetch;
  /** Longest wait honoured from a Retry-After header (default 30 s). */
  maxRetryAfterMs?: number;
  /** Retries of a request that got no answer (connection refused, reset, timeout) (default 5). */
  maxNetworkRetries?: number;
  /** Per-request time limit (default 120 s). */
  requestTimeoutMs?: number;
}

export interface IngestProgress {
  /** Chunks acknowledged (202) so far. */
  accepted: number;
  total: number;
  jobIds: string[];
  /** The request just acknowledged. */
  jobId: string;
  count: number;
}

export interface IngestOptions {
  /** Chunks per request (default 256). */
  batchSize?: number;
  overflow?: OverflowPolicy;
  overlapTokens?: number;
  /**
   * Poll `GET /v1/status` for room before sending, like the original Python client's
   * `wait_until_available`: `"auto"` (default) only once the server has answered 429 in this
   * ingest, `"always"` before every request, `"never"`.
   */
  waitForCapacity?: "auto" | "always" | "never";
  /** Interval of the capacity polls (default 500 ms). */
  capacityPollMs?: number;
  /** Give up on one request that keeps getting 429/503 after this long (default 15 min). */
  maxWaitMs?: number;
  onProgress?: (progress: IngestProgress) => void;
  /** Called on every 429/503 before waiting; for logs and tests. */
  onRetry?: (info: { status: number; code: string; waitMs: number }) => void;
  signal?: AbortSignal;
}

export interface IngestResult {
  jobIds: string[];
  accepted: number;
}

export interface WaitForJobOptions {
  timeoutMs?: number;
  intervalMs?: number;
  signal?: AbortSignal;
}

interface RequestOptions {
  body?: unknown;
  /** Sent as Idempotency-Key: a request repeated after a lost answer then creates nothing twice. */
  idempotencyKey?: string;
  query?: Record<string, string | number | boolean | undefined>;
  signal?: AbortSignal;
  /** Retry 429/503 as well as network errors (default: only network errors for reads). */
  retryBusy?: boolean;
  /** Answer the body as text instead of parsing it as JSON (GET /metrics). */
  text?: boolean;
}

/** Client of the rag-embedding-server HTTP API. */
export class RagEmbedClient {
  readonly baseUrl: string;
  private readonly apiKey: string | undefined;
  private readonly fetchImpl: typeof fetch;
  private readonly maxRetryAfterMs: number;
  private readonly maxNetworkRetries: number;
  private readonly requestTimeoutMs: number;

  constructor(options: RagEmbedClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.apiKey = options.apiKey;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 30_000;
    this.maxNetworkRetries = options.maxNetworkRetries ?? 5;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 120_000;
  }

  /**
   * Sends `chunks` in requests of `batchSize`. A request refused with 429 (queue full, rate limit) or
   * 503 (shutting down, model loading) enqueued nothing, so the same request is sent again after
   * Retry-After: nothing is dropped or duplicated. A request whose answer was lost to a network error
   * is resent with the same Idempotency-Key, so the server answers with the job it already created.
   * Other 4xx throw a {@link RagEmbedError}; requests already acknowledged stay acknowledged.
   */
  async ingest(
    collection: string,
    chunks: readonly Chunk[],
    options: IngestOptions = {},
  ): Promise<IngestResult> {
    const batchSize = options.batchSize ?? 256;
    if (!Number.isInteger(batchSize) || batchSize < 1)
      throw new RangeError("batchSize must be a positive integer");
    const jobIds: string[] = [];
    let accepted = 0;
    const state = { sawBusy: false };
    const pending: Chunk[][] = [];
    for (let i = 0; i < chunks.length; i += batchSize) pending.push(chunks.slice(i, i + batchSize));
    while (pending.length > 0) {
      const batch = pending.shift()!;
      const result = await this.sendBatch(collection, batch, options, state);
      if (result.kind === "too_big") {
        // The queue can never hold this many at once: nothing was enqueued, so split and go on.
        const size = Math.max(1, Math.min(result.maxQueueSize, Math.floor(batch.length / 2)));
        const parts: Chunk[][] = [];
        for (let i = 0; i < batch.length; i += size) parts.push(batch.slice(i, i + size));
        pending.unshift(...parts);
        continue;
      }
      jobIds.push(result.accepted.job_id);
      accepted += result.accepted.count;
      options.onProgress?.({
        accepted,
        total: chunks.length,
        jobIds,
        jobId: result.accepted.job_id,
        count: result.accepted.count,
      });
    }
    return { jobIds, accepted };
  }

  private async sendBatch(
    collection: string,
    batch: Chunk[],
    options: IngestOptions,
    state: { sawBusy: boolean },
  ): Promise<{ kind: "accepted"; accepted: IngestAccepted } | { kind: "too_big"; maxQueueSize: number }> {
    const body: NativeIngestBody = { chunks: batch };
    if (options.overflow !== undefined) body.overflow = options.overflow;
    if (options.overlapTokens !== undefined) body.overlap_tokens = options.overlapTokens;
    const mode = options.waitForCapacity ?? "auto";
    const deadline = Date.now() + (options.maxWaitMs ?? 15 * 60_000);
    const idempotencyKey = crypto.randomUUID();
    for (;;) {
      if (mode === "always" || (mode === "auto" && state.sawBusy)) {
        await this.waitForCapacity(batch.length, deadline, options);
      }
      try {
        const accepted = await this.request<IngestAccepted>(
          "POST",
          `/v1/collections/${encodeURIComponent(collection)}/chunks`,
          { body, signal: options.signal, idempotencyKey },
        );
        return { kind: "accepted", accepted };
      } catch (error) {
        if (!(error instanceof RagEmbedError)) throw error;
        const limit = requestLimit(error, batch.length);
        if (limit !== undefined) return { kind: "too_big", maxQueueSize: limit };
        if (!isBusy(error)) throw error;
        state.sawBusy = true;
        const waitMs = retryDelayMs(error.retryAfterSeconds, {
          fallbackMs: 1000,
          capMs: this.maxRetryAfterMs,
          jitter: 0.2,
        });
        if (Date.now() + waitMs > deadline) {
          throw new RagEmbedError("timeout", `Gave up after waiting for the server: ${error.message}`, {
            status: error.status,
            details: error.details,
            cause: error,
          });
        }
        options.onRetry?.({ status: error.status, code: String(error.code), waitMs });
        if (error.code === "queue_full" && mode !== "never") {
          // Come back as soon as there is room rather than sleeping out a pessimistic Retry-After.
          await this.waitForCapacity(batch.length, Math.min(deadline, Date.now() + waitMs), options, true);
        } else {
          await sleep(waitMs, options.signal);
        }
      }
    }
  }

  /** Polls /v1/status until `count` more chunks fit in the queue, or `until` passes. */
  private async waitForCapacity(
    count: number,
    until: number,
    options: IngestOptions,
    pollFirst = false,
  ): Promise<void> {
    const interval = options.capacityPollMs ?? 500;
    let first = !pollFirst;
    while (Date.now() < until) {
      if (!first) await sleep(Math.min(interval, Math.max(0, until - Date.now())), options.signal);
      first = false;
      try {
        const status = await this.request<ServerStatus>("GET", "/v1/status", { signal: options.signal });
        const { pending_chunks: pending, max_queue_size: max } = status.queue;
        if (pending + count <= max || count > max) return;
      } catch (error) {
        if (options.signal?.aborted) throw error;
        return; // the status route is only advice: let the real request find out
      }
    }
  }

  /** Polls the job until it is `done` and returns it; throws `timeout` after `timeoutMs` (default 10 min). */
  async waitForJob(id: string, options: WaitForJobOptions = {}): Promise<Job> {
    const timeoutMs = options.timeoutMs ?? 10 * 60_000;
    const intervalMs = options.intervalMs ?? 500;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const job = await this.job(id, { limit: 1 }, options.signal);
      if (job.state === "done") return job;
      if (Date.now() + intervalMs > deadline) {
        throw new RagEmbedError("timeout", `Job ${id} not done after ${timeoutMs} ms (state ${job.state})`, {
          details: { job_id: id, counts: job.counts },
        });
      }
      await sleep(intervalMs, options.signal);
    }
  }

  job(id: string, query: JobQueryOptions = {}, signal?: AbortSignal): Promise<Job> {
    return this.request<Job>("GET", `/v1/jobs/${encodeURIComponent(id)}`, { query: { ...query }, signal });
  }

  search(
    collection: string,
    query: string,
    options: { topK?: number; filter?: SearchFilter; signal?: AbortSignal } = {},
  ): Promise<SearchResult> {
    const body: SearchBody = { query };
    if (options.topK !== undefined) body.top_k = options.topK;
    if (options.filter !== undefined) body.filter = options.filter;
    return this.request<SearchResult>("POST", `/v1/collections/${encodeURIComponent(collection)}/search`, {
      body,
      signal: options.signal,
      retryBusy: true,
    });
  }

  /** A collection's shape, point count and the embedding profile it is bound to (`GET /v1/collections/{c}`). */
  collection(name: string, signal?: AbortSignal): Promise<CollectionInfo> {
    return this.request<CollectionInfo>("GET", `/v1/collections/${encodeURIComponent(name)}`, { signal });
  }

  /**
   * Re-embed the collection's stored chunks with the server's model into its next version
   * (`POST .../reembed`): a job like any ingest ({@link waitForJob}); a repeated call returns it.
   */
  reembed(
    collection: string,
    options: { model?: string; signal?: AbortSignal } = {},
  ): Promise<ReembedAccepted> {
    return this.request<ReembedAccepted>(
      "POST",
      `/v1/collections/${encodeURIComponent(collection)}/reembed`,
      {
        body: options.model === undefined ? {} : { model: options.model },
        signal: options.signal,
      },
    );
  }

  /**
   * Point the collection's name at its re-embedded version (`POST .../cutover`; 409 while chunks are
   * left). With `check`, only if the two versions' top-k answers to the sample queries overlap by at
   * least `min_overlap` (409 `cutover_check_failed` otherwise; both models must be served).
   */
  cutover(
    collection: string,
    options: { check?: CutoverCheck; signal?: AbortSignal } | AbortSignal = {},
  ): Promise<CutoverDone> {
    const { check, signal } =
      options instanceof AbortSignal ? { check: undefined, signal: options } : options;
    return this.request<CutoverDone>("POST", `/v1/collections/${encodeURIComponent(collection)}/cutover`, {
      body: check === undefined ? {} : { check },
      signal,
    });
  }

  /** The versions of a collection that exist, which one its name reaches (`GET .../versions`). */
  versions(collection: string, signal?: AbortSignal): Promise<CollectionVersions> {
    return this.request<CollectionVersions>(
      "GET",
      `/v1/collections/${encodeURIComponent(collection)}/versions`,
      {
        signal,
      },
    );
  }

  /** Delete version `version` of a collection, never the one its name reaches (`DELETE .../versions/{N}`). */
  deleteVersion(collection: string, version: number, signal?: AbortSignal): Promise<VersionDeleted> {
    return this.request<VersionDeleted>(
      "DELETE",
      `/v1/collections/${encodeURIComponent(collection)}/versions/${version}`,
      { signal },
    );
  }

  /** Point the collection's name back at its previous version (`POST .../rollback`). */
  rollback(collection: string, signal?: AbortSignal): Promise<VersionSwap> {
    return this.request<VersionSwap>("POST", `/v1/collections/${encodeURIComponent(collection)}/rollback`, {
      body: {},
      signal,
    });
  }

  /** The served model under the name OpenAI clients use (`GET /v1/models`). */
  models(signal?: AbortSignal): Promise<ModelList> {
    return this.request<ModelList>("GET", "/v1/models", { signal });
  }

  /**
   * Query-side vectors for `input`, answered directly (nothing queued), through the OpenAI-compatible
   * `POST /v1/embeddings`. `model` defaults to the served model's name from {@link models}.
   */
  async embed(
    input: string | string[],
    options: { model?: string; overflow?: EmbeddingsBody["overflow"]; signal?: AbortSignal } = {},
  ): Promise<EmbeddingsResult> {
    const model = options.model ?? (await this.models(options.signal)).data[0]?.id;
    if (model === undefined) throw new RagEmbedError("invalid_response", "GET /v1/models listed no model");
    return this.request<EmbeddingsResult>("POST", "/v1/embeddings", {
      body: {
        model,
        input,
        encoding_format: "float",
        ...(options.overflow === undefined ? {} : { overflow: options.overflow }),
      } satisfies EmbeddingsBody,
      signal: options.signal,
      retryBusy: true,
    });
  }

  status(signal?: AbortSignal): Promise<ServerStatus> {
    return this.request<ServerStatus>("GET", "/v1/status", { signal });
  }

  /** Liveness: resolves when the process answers (`GET /health`, needs no key). */
  health(signal?: AbortSignal): Promise<{ status: "ok" }> {
    return this.request<{ status: "ok" }>("GET", "/health", { signal });
  }

  /** Resolves when the server is ready (model loaded, queue and store answering); throws 503 otherwise. */
  ready(signal?: AbortSignal): Promise<Ready> {
    return this.request<Ready>("GET", "/ready", { signal });
  }

  /** The loaded model: name, source, profile, dimension, token limit, prefixes (`GET /model-info`). */
  modelInfo(signal?: AbortSignal): Promise<ModelDescription> {
    return this.request<ModelDescription>("GET", "/model-info", { signal, retryBusy: true });
  }

  /** The Prometheus text exposition (`GET /metrics`). */
  metrics(signal?: AbortSignal): Promise<string> {
    return this.request<string>("GET", "/metrics", { signal, text: true });
  }

  /** The seed API's status, `queue_available = size < threshold × max`. */
  seedStatus(threshold?: number, signal?: AbortSignal): Promise<SeedStatus> {
    return this.request<SeedStatus>("GET", "/test/status", { query: { threshold }, signal });
  }

  deadLetters(query: DeadLetterQueryOptions = {}, signal?: AbortSignal): Promise<DeadLetterPage> {
    return this.request<DeadLetterPage>("GET", "/v1/dead-letters", { query: { ...query }, signal });
  }

  /** Back to the queue, attempts reset. Exactly one of `{all: true}`, `{job_id}`, `{ids}`. */
  replayDeadLetters(selector: DeadLetterSelector, signal?: AbortSignal): Promise<{ replayed: number }> {
    return this.request<{ replayed: number }>("POST", "/v1/dead-letters/replay", { body: selector, signal });
  }

  discardDeadLetters(selector: DeadLetterSelector, signal?: AbortSignal): Promise<{ discarded: number }> {
    return this.request<{ discarded: number }>("DELETE", "/v1/dead-letters", { body: selector, signal });
  }

  /**
   * Replaces a document's chunk set (`PUT .../documents/{id}`): unchanged chunks are not embedded
   * again, and once the new set is stored the document's other chunks are deleted. Waits out
   * 429/503 and resends after a lost answer with the same Idempotency-Key.
   */
  replaceDocument(
    collection: string,
    documentId: string,
    chunks: readonly Chunk[],
    options: { overflow?: IngestOptions["overflow"]; signal?: AbortSignal } = {},
  ): Promise<DocumentReplaceAccepted> {
    const body: NativeIngestBody = { chunks: [...chunks] };
    if (options.overflow !== undefined) body.overflow = options.overflow;
    return this.request(
      "PUT",
      `/v1/collections/${encodeURIComponent(collection)}/documents/${encodeURIComponent(documentId)}`,
      { body, signal: options.signal, retryBusy: true, idempotencyKey: crypto.randomUUID() },
    );
  }

  /** Every document id of a collection, a page at a time (`GET .../documents`). */
  async *documents(collection: string, signal?: AbortSignal): AsyncGenerator<string> {
    let after: string | undefined;
    do {
      const page: DocumentList = await this.request(
        "GET",
        `/v1/collections/${encodeURIComponent(collection)}/documents`,
        { query: { after, limit: 1000 }, signal, retryBusy: true },
      );
      yield* page.documents;
      after = page.next_cursor ?? undefined;
    } while (after !== undefined);
  }

  deleteDocument(collection: string, documentId: string, signal?: AbortSignal): Promise<DocumentDeleted> {
    return this.request<DocumentDeleted>(
      "DELETE",
      `/v1/collections/${encodeURIComponent(collection)}/documents/${encodeURIComponent(documentId)}`,
      { signal },
    );
  }

  /** One HTTP call; network errors retry with backoff, 429/503 too when `retryBusy`. */
  private async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const url = new URL(this.baseUrl + path);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = { accept: options.text ? "text/plain" : "application/json" };
    if (options.body !== undefined) headers["content-type"] = "application/json";
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    if (options.idempotencyKey) headers["idempotency-key"] = options.idempotencyKey;
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    let networkFailures = 0;
    let busyRetries = 0;
    for (;;) {
      let response: Response;
      const timeout = AbortSignal.timeout(this.requestTimeoutMs);
      const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
      try {
        response = await this.fetchImpl(url, { method, headers, body: payload, signal });
      } catch (error) {
        if (options.signal?.aborted) throw options.signal.reason ?? error;
        networkFailures += 1;
        if (networkFailures > this.maxNetworkRetries) {
          throw new RagEmbedError(
            "network_error",
            `${method} ${url.pathname} failed after ${networkFailures} attempts: ${describe(error)}`,
            { cause: error },
          );
        }
        await sleep(backoffMs(networkFailures - 1, 250, 10_000), options.signal);
        continue;
      }
      if (response.ok) {
        const text = await response.text();
        if (options.text) return text as T;
        try {
          return (text === "" ? {} : JSON.parse(text)) as T;
        } catch (error) {
          throw new RagEmbedError("invalid_response", `${method} ${url.pathname}: the answer is not JSON`, {
            status: response.status,
            cause: error,
          });
        }
      }
      const error = await errorFrom(response, method, url.pathname);
      if (options.retryBusy && isBusy(error) && busyRetries < 20) {
        busyRetries += 1;
        await sleep(
          retryDelayMs(error.retryAfterSeconds, {
            fallbackMs: 1000,
            capMs: this.maxRetryAfterMs,
            jitter: 0.2,
          }),
          options.signal,
        );
        continue;
      }
      throw error;
    }
  }
}

function isBusy(error: RagEmbedError): boolean {
  return error.status === 429 || error.status === 503;
}

/**
 * The most chunks one request may carry, when the server refused this one (413) for holding more:
 * more than the whole queue holds (MAX_QUEUE_SIZE) or than MAX_CHUNKS_PER_REQUEST. Nothing was
 * enqueued, so the batch can be split and sent again.
 */
function requestLimit(error: RagEmbedError, sent: number): number | undefined {
  if (error.code !== "payload_too_large") return undefined;
  const limit = numberDetail(error, "max_queue_size") ?? numberDetail(error, "max");
  return limit !== undefined && sent > limit ? limit : undefined;
}

function numberDetail(error: RagEmbedError, key: string): number | undefined {
  const value = error.details?.[key];
  return typeof value === "number" ? value : undefined;
}

async function errorFrom(response: Response, method: string, path: string): Promise<RagEmbedError> {
  const retryAfterSeconds = parseRetryAfter(response.headers.get("retry-after"));
  const text = await response.text().catch(() => "");
  let body: ErrorBody | undefined;
  try {
    body = JSON.parse(text) as ErrorBody;
  } catch {
    body = undefined;
  }
  const code = body?.error?.code ?? `http_${response.status}`;
  const message = body?.error?.message ?? (text.slice(0, 200) || response.statusText);
  return new RagEmbedError(code, `${method} ${path}: ${response.status} ${code}: ${message}`, {
    status: response.status,
    details: body?.error?.details,
    retryAfterSeconds,
  });
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
  }
  return String(error);
}
