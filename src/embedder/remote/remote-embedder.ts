/**
 * Embedder backed by a remote engine over HTTP (EMBEDDER=remote): TEI, Infinity, vLLM, Ollama, an
 * OpenAI-compatible API, or another instance of this server. The model's rules stay ours: prefixes,
 * the token limit and the overflow policy are applied here before anything is sent (input-plan.ts), so
 * the engine gets only texts that fit and never truncates silently.
 *
 * One embed call becomes requests of at most EMBEDDER_MAX_BATCH texts, sent up to EMBEDDER_CONCURRENCY
 * at a time within EMBEDDER_RPM / EMBEDDER_TPM (request-scheduler.ts). A 429 or an outage pauses every
 * request for the engine's Retry-After (or a backoff) and the failed request is sent again a few times;
 * if that does not get through, the call fails retryably (ProcessingError with `outage` and
 * `retryAfterMs`) and the queue retries the batch later. Vectors that came back before that are kept
 * (vector-cache.ts), so no text the engine already embedded is sent again, whether the retry is the
 * whole batch or the pipeline isolating a chunk the engine refused.
 */
import { backoffMs } from "../../domain/backoff.js";
import { ProcessingError } from "../../domain/errors.js";
import type { EmbedKind, ModelInfo, OverflowSpec, RemoteModelInfo } from "../../domain/types.js";
import type { EmbeddedWindow, Embedder, EmbedderStatus, EmbedResult } from "../embedder.js";
import type { RemoteEmbedderMetrics } from "../embedder-metrics.js";
import { normalizeRows } from "../pooling.js";
import { type ModelProfile, type ProfileOverrides, resolveProfile } from "../profiles.js";
import { EngineHealth } from "./engine-health.js";
import {
  type EngineProtocol,
  openAiProtocol,
  type ProtocolName,
  parseTeiInfo,
  type TeiInfo,
  teiProtocol,
} from "./engine-protocol.js";
import { planInputs } from "./input-plan.js";
import { failureFromNetwork, failureFromResponse, RemoteFailure } from "./remote-failure.js";
import { packRequests } from "./request-packing.js";
import { RequestScheduler } from "./request-scheduler.js";
import { ESTIMATE_COUNTER, loadTokenizerCounter, type TokenCounter } from "./token-counter.js";
import { VectorCache } from "./vector-cache.js";

export interface RemoteEmbedderOptions {
  protocol: ProtocolName;
  /** Base URL as configured (EMBEDDER_URL). */
  url: string;
  apiKey: string | undefined;
  /** EMBEDDER_MODEL: sent with every openai request; TEI names its own model in /info. */
  model: string | undefined;
  /** Where the tokenizer comes from (EMBEDDING_MODEL when set), or null to count by estimate. */
  tokenizer: string | null;
  /** Download cache for a hub tokenizer. */
  cacheDir: string;
  /** EMBEDDER_MAX_TOKENS: the declared limit; wins over the profile's. */
  maxTokens: number | undefined;
  profileOverrides: ProfileOverrides;
  rpm: number;
  tpm: number;
  maxBatch: number;
  concurrency: number;
  timeoutMs: number;
  /** Backoff of requests sent again within a call (RETRY_BASE_MS, RETRY_MAX_MS). */
  retryBaseMs: number;
  retryMaxMs: number;
  /** Memory for finished vectors (default 64 MiB). */
  cacheBytes?: number;
}

export interface RemoteEmbedderLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export type { RemoteEmbedderMetrics };

/**
 * Failures tolerated within one call before its batch goes back to the queue: a request is sent again at
 * most this many times, and once the engine has failed more often than this in a row (any requests, no
 * success between) it is down or throttling hard, and every call gives up.
 */
const IN_CALL_RETRIES = 2;
/** A Retry-After longer than this is waited for in the queue, not while holding the batch. */
const IN_CALL_MAX_WAIT_MS = 30_000;
const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;
/** Statuses that mean a wrong URL, key or model: at start-up, a configuration error to report, not wait out. */
const CONFIGURATION_STATUSES = new Set([400, 401, 403, 404, 422]);

interface Loaded {
  info: ModelInfo;
  profile: ModelProfile;
  counter: TokenCounter;
  protocol: EngineProtocol;
  scheduler: RequestScheduler;
  maxBatch: number;
}

export class RemoteEmbedder implements Embedder {
  private loading: Promise<Loaded> | null = null;
  private loaded: Loaded | null = null;
  private readonly health = new EngineHealth();
  private readonly cache: VectorCache;
  private readonly closing = new AbortController();
  /** Failed requests since the last success: the backoff of the next pause grows with it. */
  private consecutiveFailures = 0;
  private dimension: number | null = null;

  constructor(
    private readonly options: RemoteEmbedderOptions,
    private readonly logger?: RemoteEmbedderLogger,
    private readonly metrics?: RemoteEmbedderMetrics,
  ) {
    this.cache = new VectorCache(options.cacheBytes ?? DEFAULT_CACHE_BYTES);
  }

  load(): Promise<ModelInfo> {
    this.loading ??= this.start().then(
      (loaded) => {
        this.loaded = loaded;
        this.logger?.info({ model: loaded.info }, "remote embedding engine ready");
        return loaded;
      },
      (error: unknown) => {
        // A later load starts from scratch (after the configuration or the engine is fixed).
        this.loading = null;
        throw error;
      },
    );
    return this.loading.then((loaded) => loaded.info);
  }

  info(): ModelInfo {
    if (!this.loaded) throw new Error("remote embedder not loaded yet: call load() first");
    return this.loaded.info;
  }

  async embed(texts: string[], kind: EmbedKind, overflow?: OverflowSpec[]): Promise<EmbedResult> {
    if (overflow !== undefined && overflow.length !== texts.length) {
      throw new RangeError(`overflow has ${overflow.length} entries for ${texts.length} texts`);
    }
    if (texts.length === 0) return { vectors: [], tokens: [], truncatedTokens: [], windows: [] };
    await this.load();
    const loaded = this.loaded!;
    const plan = await planInputs(texts, overflow, {
      prefix: kind === "query" ? loaded.info.prefixes.query : loaded.info.prefixes.passage,
      maxTokens: loaded.info.maxTokens,
      counter: loaded.counter,
    });
    const keys = plan.inputs.map((input) => VectorCache.key(input.text));
    const vectors = new Map<string, Float32Array>();
    // Indexes of the inputs to send: each distinct text once, unless the cache has it.
    const missing: number[] = [];
    const missingKeys = new Set<string>();
    for (const [index, key] of keys.entries()) {
      if (vectors.has(key) || missingKeys.has(key)) continue;
      const cached = this.cache.get(key);
      if (cached) {
        vectors.set(key, cached);
      } else {
        missing.push(index);
        missingKeys.add(key);
      }
    }
    if (vectors.size > 0) this.metrics?.cacheHits(vectors.size);

    if (missing.length > 0) {
      const requests = packRequests(
        missing.map((index) => plan.inputs[index]?.tokens ?? 0),
        loaded.maxBatch,
        loaded.scheduler.maxRequestTokens,
      ).map((group) => group.map((position) => missing[position] ?? 0));
      // An outage on one request stops the call's requests that have not gone yet; those in flight finish.
      const giveUp = new AbortController();
      const outcomes = await Promise.allSettled(
        requests.map(async (indexes) => {
          const sent = indexes.map((index) => plan.inputs[index]!);
          const answer = await this.send(
            loaded,
            sent.map((input) => input.text),
            sumTokens(sent),
            kind,
            giveUp,
          );
          indexes.forEach((index, row) => {
            const key = keys[index]!;
            this.cache.set(key, answer[row]!);
            vectors.set(key, answer[row]!);
          });
        }),
      );
      const failures = outcomes.flatMap((outcome) => (outcome.status === "rejected" ? [outcome.reason] : []));
      if (failures.length > 0) throw this.callFailure(failures, loaded.scheduler);
    }

    const vectorOf = (input: number): Float32Array => vectors.get(keys[input]!)!;
    return {
      vectors: plan.texts.map((text) => vectorOf(text.inputs[0]!)),
      tokens: plan.texts.map((text) => text.tokens),
      truncatedTokens: plan.texts.map((text) => text.truncatedTokens),
      windows: plan.texts.map((text) =>
        text.windows
          ? text.windows.map(
              (window, k): EmbeddedWindow => ({ ...window, vector: vectorOf(text.inputs[k]!) }),
            )
          : null,
      ),
    };
  }

  async countTokens(texts: string[], kind: EmbedKind): Promise<number[]> {
    if (texts.length === 0) return [];
    await this.load();
    const { counter, info } = this.loaded!;
    const prefix = kind === "query" ? info.prefixes.query : info.prefixes.passage;
    const counts: number[] = [];
    for (const text of texts) {
      counts.push(counter.count(prefix + text));
      // Main-thread tokenization: let other requests in between long runs.
      if (counts.length % 256 === 0) await new Promise(setImmediate);
    }
    return counts;
  }

  status(): EmbedderStatus {
    const health = this.health.snapshot();
    const scheduler = this.loaded?.scheduler;
    const pausedUntil = scheduler && scheduler.pausedUntilMs > Date.now() ? scheduler.pausedUntilMs : null;
    return {
      engine: "remote",
      state: health.state,
      lastError: health.lastError,
      lastErrorAt: health.lastErrorAt,
      failingSince: health.failingSince,
      details: {
        protocol: this.options.protocol,
        url: publicUrl(this.options.url),
        model: this.loaded?.info.remote?.model ?? this.options.model ?? null,
        lastSuccessAt: health.lastSuccessAt,
        pausedUntil: pausedUntil === null ? null : new Date(pausedUntil).toISOString(),
        inFlight: scheduler?.inFlight ?? 0,
        waiting: scheduler?.waiting ?? 0,
        requestsLastMinute: health.requestsLastMinute,
        tokensLastMinute: health.tokensLastMinute,
        rateLimitedLastMinute: health.rateLimitedLastMinute,
        rateLimitedTotal: health.rateLimitedTotal,
        latencyMs: health.latencyMs,
        limits: {
          rpm: this.options.rpm,
          tpm: this.options.tpm,
          maxBatch: this.loaded?.maxBatch ?? this.options.maxBatch,
          concurrency: this.options.concurrency,
        },
        cachedVectors: this.cache.size,
      },
    };
  }

  async close(): Promise<void> {
    const reason = new ProcessingError("embedder closed", { retryable: true, outage: true });
    this.closing.abort(reason);
    this.loaded?.scheduler.close(reason);
  }

  /** Tokenizer, engine description, limits, then a first embed that proves the engine works and gives the dimension. */
  private async start(): Promise<Loaded> {
    const { options } = this;
    let counter = ESTIMATE_COUNTER;
    if (options.tokenizer !== null) {
      try {
        counter = await loadTokenizerCounter(options.tokenizer, options.cacheDir);
      } catch (error) {
        throw new ProcessingError(
          `EMBEDDING_MODEL=${options.tokenizer}: could not load its tokenizer to count tokens for the remote engine (${errorText(error)}); point it at a directory with tokenizer.json and tokenizer_config.json, or unset it and declare EMBEDDER_MAX_TOKENS to count by a conservative estimate`,
          { retryable: false },
        );
      }
    }
    const tei = options.protocol === "tei" ? await this.untilAnswered(() => this.teiInfo()) : null;
    const engineModel = tei?.modelId ?? options.model ?? "unknown";
    // Recognised by the tokenizer (as the local model is), else by the engine's model name.
    const profile = resolveProfile(
      options.tokenizer ?? engineModel,
      counter.nameOrPath ?? engineModel,
      options.profileOverrides,
    );
    const maxTokens = Math.min(
      options.maxTokens ?? Math.min(profile.maxTokens, counter.maxLength ?? profile.maxTokens),
      tei?.maxInputLength ?? Number.POSITIVE_INFINITY,
    );
    if (options.tpm > 0 && options.tpm <= maxTokens) {
      throw new ProcessingError(
        `EMBEDDER_TPM=${options.tpm} is not more than the ${maxTokens} tokens one text may have: a long text could never be sent`,
        { retryable: false },
      );
    }
    const protocol =
      options.protocol === "tei"
        ? teiProtocol(options.url)
        : openAiProtocol(options.url, options.model ?? "");
    const scheduler = new RequestScheduler({
      concurrency: options.concurrency,
      rpm: options.rpm,
      tpm: options.tpm,
      largestInputTokens: maxTokens,
    });
    const maxBatch = Math.min(options.maxBatch, tei?.maxClientBatchSize ?? options.maxBatch);
    const remote: RemoteModelInfo = {
      protocol: options.protocol,
      url: publicUrl(options.url),
      // TEI's model revision is part of what the vectors depend on.
      model: tei?.modelSha ? `${engineModel}#${tei.modelSha.slice(0, 12)}` : engineModel,
      tokenCounter: counter.kind,
    };
    const partial: Loaded = {
      profile,
      counter,
      protocol,
      scheduler,
      maxBatch,
      info: {
        // The fingerprint of every stored vector: another provider model is another model.
        id: `remote:${options.protocol}:${remote.model}@${new URL(options.url).host}`,
        profile: profile.name,
        dimension: 0,
        maxTokens,
        pooling: profile.pooling,
        normalize: profile.normalize,
        prefixes: { passage: profile.passagePrefix, query: profile.queryPrefix },
        dtype: "remote",
        remote,
      },
    };
    const warmUp = `${profile.queryPrefix}warm up`;
    const [probe] = await this.untilAnswered(() =>
      this.send(partial, [warmUp], counter.count(warmUp), "query", new AbortController(), 0),
    );
    this.dimension = probe!.length;
    partial.info.dimension = probe!.length;
    return partial;
  }

  /**
   * Runs `attempt` until the engine answers: an engine that is down or busy at start-up is waited for
   * (containers start in any order), one that refuses us (wrong URL, key or model) is a configuration error.
   */
  private async untilAnswered<T>(attempt: () => Promise<T>): Promise<T> {
    for (let failures = 0; ; failures++) {
      try {
        return await attempt();
      } catch (error) {
        if (!(error instanceof RemoteFailure)) throw error;
        if (error.kind === "rejected" || CONFIGURATION_STATUSES.has(error.status ?? 0)) {
          throw new ProcessingError(
            `remote embedding engine refused the start-up request: ${error.message}${this.startupHint(error.status)}`,
            { retryable: false },
          );
        }
        const wait = error.retryAfterMs ?? this.backoff(failures);
        this.logger?.warn(
          { err: error.message, retryInMs: wait },
          "remote embedding engine not answering yet; waiting",
        );
        await abortableSleep(wait, this.closing.signal);
      }
    }
  }

  /** What to check when the engine refuses us at start-up. */
  private startupHint(status: number | null): string {
    if (status === 401 || status === 403) return " (check EMBEDDER_API_KEY)";
    if (status === 404 && this.options.protocol === "openai") {
      return " (a wrong model, or a wrong URL: requests go to EMBEDDER_URL + /embeddings; most engines want EMBEDDER_URL to end in /v1, Infinity serves at its root)";
    }
    return "";
  }

  private async teiInfo(): Promise<TeiInfo> {
    const url = `${this.options.url.replace(/\/+$/, "")}/info`;
    const answer = await this.fetchJson(url, "GET", undefined, `GET ${url}`);
    return parseTeiInfo(answer);
  }

  /**
   * One request through the scheduler, sent again after a 429 or an outage (after the pause it imposes,
   * ahead of requests not yet sent) within IN_CALL_RETRIES. Giving up aborts `giveUp`, so the call's
   * requests still waiting never go.
   */
  private async send(
    loaded: Pick<Loaded, "scheduler" | "protocol" | "profile">,
    inputs: string[],
    tokens: number,
    kind: EmbedKind,
    giveUp: AbortController,
    retries = IN_CALL_RETRIES,
  ): Promise<Float32Array[]> {
    const { scheduler, protocol, profile } = loaded;
    for (let attempt = 0; ; attempt++) {
      const release = await scheduler.acquire(tokens, {
        urgent: kind === "query",
        retry: attempt > 0,
        signal: anySignal(giveUp.signal, this.closing.signal),
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
        if (profile.normalize) for (const vector of vectors) normalizeRows(vector, vector.length);
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

  private async fetchJson(
    url: string,
    method: "GET" | "POST",
    body: unknown,
    endpoint: string,
  ): Promise<unknown> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    let response: Response;
    let text: string;
    try {
      const signal = anySignal(AbortSignal.timeout(this.options.timeoutMs), this.closing.signal);
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

  /** The error a failed call throws: an outage (retry the batch later, whole) wins over refused input. */
  private callFailure(failures: unknown[], scheduler: RequestScheduler): Error {
    const remote = failures.filter((f): f is RemoteFailure => f instanceof RemoteFailure);
    if (remote.length < failures.length) {
      return failures.find((f) => !(f instanceof RemoteFailure)) as Error;
    }
    const outage = remote.find((f) => f.kind !== "rejected");
    if (outage) {
      // No `cause`: the message already carries the engine's words, and loggers would print them twice.
      return new ProcessingError(
        `remote embedding engine ${outage.kind.replace("_", " ")}: ${outage.message}`,
        {
          retryable: true,
          outage: true,
          retryAfterMs: Math.max(0, scheduler.pausedUntilMs - Date.now()),
        },
      );
    }
    const refused = remote[0]!;
    return new ProcessingError(`remote embedding engine refused the input: ${refused.message}`, {
      retryable: false,
    });
  }

  /** Equal jitter, as the queue's retries: a failing engine waits at least half the step. */
  private backoff(failures: number): number {
    return backoffMs(failures, this.options.retryBaseMs, this.options.retryMaxMs, "equal");
  }
}

function sumTokens(inputs: ReadonlyArray<{ tokens: number }>): number {
  return inputs.reduce((sum, input) => sum + input.tokens, 0);
}

/** The URL without credentials or query, fit for status pages and fingerprints. */
export function publicUrl(url: string): string {
  const parsed = new URL(url);
  parsed.username = "";
  parsed.password = "";
  parsed.search = "";
  return parsed.toString().replace(/\/$/, "");
}

function anySignal(...signals: AbortSignal[]): AbortSignal {
  return AbortSignal.any(signals);
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

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
