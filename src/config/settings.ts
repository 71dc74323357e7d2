import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import Type, { type Static, type TSchema } from "typebox";
import Value from "typebox/value";
import { ModelListError, type ModelSpec, parseModelSpecs } from "./model-specs.js";

/**
 * Every setting, once: its env var and CLI flag are derived from the key (maxQueueSize →
 * MAX_QUEUE_SIZE, --max-queue-size), so the three can never drift apart. The README table is
 * checked against this list by a test.
 */
const optionalString = (description: string) => Type.Optional(Type.String({ description }));

/** A duration: a number with a unit (ms, s, m, h, d), e.g. "7d", "90s"; a bare number is seconds. */
const DURATION_PATTERN = "^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)?$";
const duration = (defaultValue: string, description: string) =>
  Type.String({ pattern: DURATION_PATTERN, default: defaultValue, description });

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of a duration setting ("7d" → 604800000); bare numbers are seconds. */
export function parseDuration(text: string): number {
  const match = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) throw new SettingsError(`Not a duration: ${JSON.stringify(text)} (use e.g. 90s, 30m, 12h, 7d)`);
  return Math.round(Number(match[1]) * (UNIT_MS[match[2] ?? "s"] ?? 1000));
}

export const SETTINGS_SCHEMA = Type.Object({
  host: Type.String({ default: "127.0.0.1", description: "Address the HTTP server listens on" }),
  port: Type.Integer({
    minimum: 0,
    maximum: 65535,
    default: 8000,
    description: "HTTP port (0 = any free port)",
  }),
  workerPort: Type.Integer({
    minimum: 0,
    maximum: 65535,
    default: 8001,
    description: "Port of a worker's /health, /ready and /metrics (ROLE=worker only; 0 = any free port)",
  }),
  dataDir: Type.String({
    default: "./data",
    description: "Directory of the SQLite file (queue and vectors)",
  }),
  embeddingModel: Type.String({
    default: "Xenova/all-MiniLM-L6-v2",
    description: "Hugging Face model id, or a local model directory (transformers.js layout)",
  }),
  embeddingModels: optionalString(
    'Several models in one server: a JSON array (or @file holding one) of {"name","model"} with optional "dtype", "threads", "sessions", "passage_prefix", "query_prefix", "max_tokens", "pooling"; the first is the default; replaces EMBEDDING_MODEL (see "Changing the model")',
  ),
  servedModelName: optionalString(
    "Model name for OpenAI clients (/v1/models, /v1/embeddings, /model-info); default: the hub id, or a local directory's base name",
  ),
  embeddingDtype: Type.Union([Type.Literal("q8"), Type.Literal("fp32"), Type.Literal("fp16")], {
    default: "q8",
    description: "ONNX weights to load: q8 (onnx/model_quantized.onnx) or fp32 (onnx/model.onnx)",
  }),
  embeddingThreads: Type.Integer({
    minimum: 1,
    default: availableParallelism(),
    description: "Cores the embedder computes on, shared by its ONNX sessions (default: number of cores)",
  }),
  embeddingSessions: Type.Integer({
    minimum: 0,
    default: 0,
    description:
      "ONNX sessions running forward passes at once, each with EMBEDDING_THREADS / sessions threads (0 = one per thread: fastest per CPU-second; fewer saves memory, about 60 MB each for MiniLM int8, 120 MB for e5)",
  }),
  modelCacheDir: optionalString("Where hub models are cached (default: DATA_DIR/models)"),
  embeddingPassagePrefix: optionalString("Override the profile's passage prefix (e5: 'passage: ')"),
  embeddingQueryPrefix: optionalString("Override the profile's query prefix (e5: 'query: ')"),
  embeddingMaxTokens: Type.Optional(
    Type.Integer({ minimum: 8, description: "Override the profile's max tokens per text" }),
  ),
  embeddingPooling: Type.Optional(
    Type.Union([Type.Literal("mean"), Type.Literal("cls")], {
      description: "Override the profile's pooling",
    }),
  ),
  embedder: Type.Union([Type.Literal("local"), Type.Literal("remote")], {
    default: "local",
    description:
      "local: EMBEDDING_MODEL runs here (ONNX); remote: an engine over HTTP (EMBEDDER_URL) makes the vectors",
  }),
  embedderUrl: optionalString(
    "Remote engine's base URL: openai protocol, the OpenAI SDK's baseURL (requests go to it + /embeddings: https://api.openai.com/v1, http://vllm:8000/v1); tei, the TEI server's root",
  ),
  embedderApiKey: optionalString("Sent to the remote engine as Authorization: Bearer"),
  embedderModel: optionalString(
    "Model name sent to the remote engine (required for openai; TEI reports its own); part of the vectors' fingerprint",
  ),
  embedderProtocol: Type.Union([Type.Literal("openai"), Type.Literal("tei")], {
    default: "openai",
    description:
      "openai: POST /embeddings (OpenAI, Infinity, vLLM, Ollama, LocalAI, this server); tei: TEI's POST /embed",
  }),
  embedderMaxTokens: Type.Optional(
    Type.Integer({
      minimum: 8,
      description:
        "Remote model's token limit per text (wins over the profile's); without EMBEDDING_MODEL, tokens are counted against it by a conservative estimate",
    }),
  ),
  embedderRpm: Type.Integer({
    minimum: 0,
    default: 0,
    description: "Requests per minute the remote engine allows (0 = no limit)",
  }),
  embedderTpm: Type.Integer({
    minimum: 0,
    default: 0,
    description: "Tokens per minute the remote engine allows (0 = no limit)",
  }),
  embedderMaxBatch: Type.Integer({
    minimum: 1,
    default: 32,
    description: "Texts per request to the remote engine at most (TEI's max_client_batch_size lowers it)",
  }),
  embedderConcurrency: Type.Integer({
    minimum: 1,
    default: 4,
    description: "Requests to the remote engine in flight at once",
  }),
  embedderTimeoutMs: Type.Integer({
    minimum: 100,
    default: 60_000,
    description: "Timeout of one request to the remote engine; a timed-out request is retried",
  }),
  maxQueueSize: Type.Integer({
    minimum: 1,
    default: 100_000,
    description: "Chunks accepted but not yet stored; beyond it requests get 429",
  }),
  maxQueueTokens: Type.Integer({
    minimum: 1,
    default: 50_000_000,
    description:
      "Estimated tokens accepted but not yet stored (bounds queue memory for long texts); beyond it requests get 429",
  }),
  jobRetention: duration(
    "7d",
    "How long a finished job and its per-chunk receipts are kept (e.g. 7d, 12h, 3600s)",
  ),
  deadLetterRetention: duration(
    "30d",
    "How long a dead letter is kept for replay before it is discarded as expired",
  ),
  embeddingMaxRate: Type.Number({ minimum: 0, default: 0, description: "Ceiling in chunks/s (0 = none)" }),
  maxParallelTasks: Type.Integer({
    minimum: 1,
    default: 2,
    description: "Reservations in flight at once (one embeds while another is stored)",
  }),
  batchMaxTokens: Type.Integer({
    minimum: 64,
    default: 512,
    description:
      "Padded tokens per forward pass (batch size × longest text in it); with BATCH_MAX_SIZE it sets the texts per pass by length: 32 short ones, 2 of 256 tokens, 1 of 512",
  }),
  batchMaxSize: Type.Integer({ minimum: 1, default: 32, description: "Texts per forward pass at most" }),
  reserveMaxChunks: Type.Integer({
    minimum: 1,
    default: 512,
    description: "Chunks taken from the queue at once; they are sorted by length before batching",
  }),
  commitSliceTokens: Type.Integer({
    minimum: 1,
    default: 4096,
    description:
      "Estimated tokens stored at a time: a reservation is sorted by length and cut into slices of about this many tokens, each stored and acknowledged as soon as it is embedded (progress moves in such steps; a crash redoes only the unstored slices)",
  }),
  maxAttempts: Type.Integer({
    minimum: 1,
    default: 5,
    description: "Failed attempts before a chunk becomes a dead letter",
  }),
  retryBaseMs: Type.Integer({
    minimum: 1,
    default: 1000,
    description: "First retry delay; doubles per attempt",
  }),
  retryMaxMs: Type.Integer({ minimum: 1, default: 60_000, description: "Longest retry delay" }),
  leaseSeconds: Type.Number({
    minimum: 1,
    default: 60,
    description: "How long reserved work is held before another worker may take it (renewed while working)",
  }),
  role: Type.Union([Type.Literal("all"), Type.Literal("api"), Type.Literal("worker")], {
    default: "all",
    description: "api: HTTP only; worker: embedding pipeline only; all: both in one process",
  }),
  queueUrl: optionalString(
    "Share one queue (BullMQ on Redis) between processes: redis://host:port, or redis-cluster://host:port,host:port for a Redis Cluster (default: the SQLite file)",
  ),
  queuePrefix: Type.String({
    default: "rag",
    description:
      "Prefix of this deployment's Redis keys; used as a Redis Cluster hash tag ({rag}) so one prefix lives in one slot",
  }),
  vectorStore: Type.Union([Type.Literal("sqlite"), Type.Literal("qdrant")], {
    default: "sqlite",
    description: "Where vectors go: sqlite (embedded, same file as the queue) or qdrant",
  }),
  qdrantUrl: optionalString("Qdrant URL, e.g. http://127.0.0.1:6333 (or set QDRANT_HOST and QDRANT_PORT)"),
  qdrantHost: optionalString("Qdrant host, used with QDRANT_PORT when QDRANT_URL is not set"),
  qdrantPort: Type.Integer({ minimum: 1, maximum: 65535, default: 6333, description: "Qdrant REST port" }),
  qdrantApiKey: optionalString("Qdrant API key"),
  qdrantDistance: Type.Union([Type.Literal("Cosine"), Type.Literal("Euclid"), Type.Literal("Dot")], {
    default: "Cosine",
    description: "Distance of new collections (both stores; sqlite supports Cosine and Euclid)",
  }),
  qdrantTimeoutMs: Type.Integer({
    minimum: 100,
    default: 30_000,
    description: "Timeout of one Qdrant request; a timed-out batch is retried",
  }),
  backendTimeoutMs: Type.Integer({
    minimum: 100,
    default: 10_000,
    description:
      "How long an API request waits for the queue or the vector store before it is answered 503 with Retry-After",
  }),
  readyFailureSeconds: Type.Number({
    minimum: 0,
    default: 10,
    description: "GET /ready answers 503 once the queue or the vector store has been failing this long",
  }),
  qdrantCollection: Type.String({
    default: "test",
    pattern: "^[A-Za-z0-9_-]{1,64}$",
    description: "Collection used by the seed endpoint POST /test/embed",
  }),
  overflowPolicy: Type.Union(
    [Type.Literal("split"), Type.Literal("truncate"), Type.Literal("reject"), Type.Literal("pool")],
    {
      default: "split",
      description:
        "Text over the model's token limit: split into windows, truncate (recorded), reject (422), or pool (one point: the normalised mean of its windows)",
    },
  ),
  splitOverlapTokens: Type.Integer({
    minimum: 0,
    default: 32,
    description: "Tokens shared by consecutive windows of a split chunk",
  }),
  maxWindowsPerChunk: Type.Integer({
    minimum: 1,
    default: 64,
    description:
      "Windows one chunk may be cut into (split and pool); a longer chunk is refused at admission with 422 text_too_long",
  }),
  maxStalls: Type.Integer({
    minimum: 1,
    default: 5,
    description:
      "Times a chunk may be taken back from a crashed or stalled worker before it is a dead letter",
  }),
  shutdownTimeoutSeconds: Type.Number({
    minimum: 0,
    default: 30,
    description: "On SIGTERM, how long in-flight batches may finish before they are released to the queue",
  }),
  apiKeys: optionalString(
    "Comma-separated API keys; when set, every route but /health needs Authorization: Bearer",
  ),
  apiKeyRateLimit: Type.Integer({
    minimum: 0,
    default: 0,
    description: "Requests per minute per API key (0 = no limit)",
  }),
  maxChunksPerRequest: Type.Integer({
    minimum: 1,
    default: 10_000,
    description: "Chunks per request at most",
  }),
  bodyLimitBytes: Type.Integer({
    minimum: 1024,
    default: 32 * 1024 * 1024,
    description: "Largest request body; larger gets 413",
  }),
  bodyTimeoutSeconds: Type.Number({
    minimum: 1,
    default: 60,
    description:
      "Time a client has to send a whole request body; a slower one gets 408 and its connection closed",
  }),
  logFormat: Type.Union([Type.Literal("json"), Type.Literal("pretty")], {
    default: "json",
    description: "json: one JSON object per line (for log collectors); pretty: readable lines for a terminal",
  }),
  logLevel: Type.Union(
    ["fatal", "error", "warn", "info", "debug", "trace", "silent"].map((level) => Type.Literal(level)),
    { default: "info", description: "pino log level" },
  ),
});

export type Settings = Static<typeof SETTINGS_SCHEMA> & {
  /** EMBEDDING_MODEL (or its flag) was given, not defaulted: a remote engine uses it only as a tokenizer. */
  embeddingModelSet: boolean;
  sqliteFile: string;
  jobRetentionMs: number;
  deadLetterRetentionMs: number;
  resolvedModelCacheDir: string;
  /** QDRANT_URL, or http://QDRANT_HOST:QDRANT_PORT, or undefined. */
  resolvedQdrantUrl: string | undefined;
  /** The served models, the default first: EMBEDDING_MODELS, else EMBEDDING_MODEL alone. */
  models: ModelSpec[];
};
export type SettingKey = keyof Static<typeof SETTINGS_SCHEMA>;

export function envName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
}

export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

export function settingKeys(): SettingKey[] {
  return Object.keys(SETTINGS_SCHEMA.properties) as SettingKey[];
}

export function settingSchema(key: SettingKey): TSchema {
  return SETTINGS_SCHEMA.properties[key] as TSchema;
}

export class SettingsError extends Error {
  override name = "SettingsError";
}

/**
 * Settings from (highest first) CLI flags, environment variables, defaults. Invalid values fail
 * loudly naming the env var and the flag, instead of being ignored.
 */
export function loadSettings(
  env: NodeJS.ProcessEnv,
  flags: Partial<Record<SettingKey, string>> = {},
): Settings {
  const raw: Record<string, unknown> = {};
  for (const key of settingKeys()) {
    const value = flags[key] ?? env[envName(key)];
    if (value !== undefined && value !== "") raw[key] = value;
  }
  // Before Value.Default, which fills `raw` in place.
  const embeddingModelSet = raw.embeddingModel !== undefined;
  const converted = Value.Convert(SETTINGS_SCHEMA, Value.Default(SETTINGS_SCHEMA, raw));
  const errors = [...Value.Errors(SETTINGS_SCHEMA, converted)];
  if (errors.length > 0) {
    const lines = errors.map((error) => {
      const key = error.instancePath.replace(/^\//, "");
      return `${envName(key)} / --${flagName(key)}: ${error.message} (got ${JSON.stringify(raw[key])})`;
    });
    throw new SettingsError(`Invalid settings:\n  ${[...new Set(lines)].join("\n  ")}`);
  }
  const settings = converted as Static<typeof SETTINGS_SCHEMA>;
  const dataDir = resolve(settings.dataDir);
  const models = servedModels(settings);
  if (models.length > 1 && settings.embedder === "remote") {
    throw new SettingsError("EMBEDDING_MODELS lists local models; EMBEDDER=remote serves one remote model");
  }
  return {
    ...settings,
    embeddingModelSet,
    dataDir,
    sqliteFile: join(dataDir, "rag-embed.sqlite"),
    jobRetentionMs: parseDuration(settings.jobRetention),
    deadLetterRetentionMs: parseDuration(settings.deadLetterRetention),
    resolvedModelCacheDir: settings.modelCacheDir ? resolve(settings.modelCacheDir) : join(dataDir, "models"),
    resolvedQdrantUrl:
      settings.qdrantUrl ??
      (settings.qdrantHost ? `http://${settings.qdrantHost}:${settings.qdrantPort}` : undefined),
    models,
  };
}

/** EMBEDDING_MODELS when given (the single-model settings are its defaults), else EMBEDDING_MODEL. */
function servedModels(settings: Static<typeof SETTINGS_SCHEMA>): ModelSpec[] {
  if (settings.embeddingModels !== undefined) {
    try {
      return parseModelSpecs(settings.embeddingModels, {
        dtype: settings.embeddingDtype,
        threads: settings.embeddingThreads,
        sessions: settings.embeddingSessions,
        baseDir: process.env.INIT_CWD ?? process.cwd(),
      });
    } catch (error) {
      if (error instanceof ModelListError) throw new SettingsError(error.message);
      throw error;
    }
  }
  return [
    {
      ...(settings.servedModelName !== undefined ? { servedName: settings.servedModelName } : {}),
      model: settings.embeddingModel,
      dtype: settings.embeddingDtype,
      threads: settings.embeddingThreads,
      sessions: settings.embeddingSessions,
      overrides: {
        ...(settings.embeddingPassagePrefix !== undefined
          ? { passagePrefix: settings.embeddingPassagePrefix }
          : {}),
        ...(settings.embeddingQueryPrefix !== undefined
          ? { queryPrefix: settings.embeddingQueryPrefix }
          : {}),
        ...(settings.embeddingMaxTokens !== undefined ? { maxTokens: settings.embeddingMaxTokens } : {}),
        ...(settings.embeddingPooling !== undefined ? { pooling: settings.embeddingPooling } : {}),
      },
    },
  ];
}
