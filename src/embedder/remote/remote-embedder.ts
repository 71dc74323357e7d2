import { ProcessingError } from "../../domain/errors.js";
import type { EmbedKind, ModelInfo, OverflowSpec, RemoteModelInfo } from "../../domain/types.js";
import type { EmbeddedWindow, Embedder, EmbedderStatus, EmbedResult } from "../embedder.js";
import type { RemoteEmbedderMetrics } from "../embedder-metrics.js";
import { type ModelProfile, type ProfileOverrides, resolveProfile } from "../profiles.js";
import { EngineConnection, type EngineTarget } from "./engine-connection.js";
import {
  type EngineProtocol,
  openAiProtocol,
  type ProtocolName,
  parseTeiInfo,
  type TeiInfo,
  teiProtocol,
} from "./engine-protocol.js";
import { planInputs } from "./input-plan.js";
import { RemoteFailure } from "./remote-failure.js";
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
  private readonly cache: VectorCache;
  /** Sends the requests (HTTP, pauses, in-call retries) and keeps the engine's health. */
  private readonly connection: EngineConnection;

  constructor(
    private readonly options: RemoteEmbedderOptions,
    private readonly logger?: RemoteEmbedderLogger,
    private readonly metrics?: RemoteEmbedderMetrics,
  ) {
    this.cache = new VectorCache(options.cacheBytes ?? DEFAULT_CACHE_BYTES);
    this.connection = new EngineConnection(options, logger, metrics);
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
          const answer = await this.connection.send(
            target(loaded),
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
    const health = this.connection.health.snapshot();
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
    this.connection.close(reason);
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
      this.connection.send(
        target(partial),
        [warmUp],
        counter.count(warmUp),
        "query",
        new AbortController(),
        0,
      ),
    );
    this.connection.dimension = probe!.length;
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
        const wait = error.retryAfterMs ?? this.connection.backoff(failures);
        this.logger?.warn(
          { err: error.message, retryInMs: wait },
          "remote embedding engine not answering yet; waiting",
        );
        await this.connection.sleep(wait);
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
    const answer = await this.connection.fetchJson(url, "GET", undefined, `GET ${url}`);
    return parseTeiInfo(answer);
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
}

/** Where the connection sends a loaded engine's requests, and whether their vectors are normalised. */
function target(loaded: Pick<Loaded, "scheduler" | "protocol" | "profile">): EngineTarget {
  return { scheduler: loaded.scheduler, protocol: loaded.protocol, normalize: loaded.profile.normalize };
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

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
