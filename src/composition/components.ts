import type { Logger } from "pino";
import type { Settings } from "../config/settings.js";
import type { DurabilityReport } from "../domain/durability.js";
import { AppError } from "../domain/errors.js";
import type { ModelInfo } from "../domain/types.js";
import { SqliteAtomicCommitter } from "../embedded/sqlite-atomic-committer.js";
import type { Embedder } from "../embedder/embedder.js";
import { ModelRoster } from "../embedder/model-roster.js";
import type { DataDirLock } from "../lifecycle/data-dir-lock.js";
import { ThroughputMeter, type ThroughputSource } from "../observability/throughput-meter.js";
import { type BatchCommitter, SequentialCommitter } from "../pipeline/batch-committer.js";
import { IngestPipeline } from "../pipeline/ingest-pipeline.js";
import type { JobQueue } from "../queue/job-queue.js";
import { classifyRedisError } from "../queue/redis/redis-errors.js";
import { SharedThroughput } from "../queue/redis/shared-throughput.js";
import type { SingleHostGuard } from "../queue/redis/single-host-guard.js";
import { SqliteJobQueue } from "../queue/sqlite/sqlite-job-queue.js";
import { Admission } from "../server/admission.js";
import { type App, buildApp } from "../server/app.js";
import { guardBackend } from "../server/backend-guard.js";
import { BackendHealth, type BackendName } from "../server/backend-health.js";
import { CollectionBindings } from "../server/collection-bindings.js";
import { Metrics, observeEnqueue } from "../server/metrics.js";
import { buildWorkerApp } from "../server/worker-app.js";
import type { SqliteDatabase } from "../storage/sqlite-database.js";
import { classifySqliteError } from "../storage/sqlite-errors.js";
import { sqliteFreeBytes } from "../storage/sqlite-space.js";
import type { VectorStore } from "../vector-store/vector-store.js";
import { openEmbedders, openQueue, openSqliteFile, openStore, singleHostGuard } from "./adapters.js";

export interface StartHooks {
  /**
   * Wrap the vector store (fault injection in tests, instrumentation). A wrapped store is no longer
   * the SQLite store itself, so batches commit store-then-ack, which is exactly-once by idempotent upsert.
   */
  decorateStore?: (store: VectorStore) => VectorStore;
  /** Wrap each model's embedder (fault injection in tests). */
  decorateEmbedder?: (embedder: Embedder) => Embedder;
  /** Called with the SQLite file once open (fault injection in tests: PRAGMA max_page_count = a full disk). */
  onDatabase?: (db: SqliteDatabase) => void;
}

/** What the lifecycle changes and the HTTP apps read: the loaded model, and whether we are stopping. */
export interface ServerState {
  model: ModelInfo | null;
  shuttingDown: boolean;
}

/** Everything a server is made of, wired, nothing started: no listener, no model load, no pipeline loop. */
export interface Components {
  state: ServerState;
  metrics: Metrics;
  /** The default model's embedder (models.default.embedder). */
  embedder: Embedder;
  /** Every served model (EMBEDDING_MODELS), the default first; the pipeline's embedders. */
  models: ModelRoster;
  /** The pipeline's queue. */
  queue: JobQueue;
  /** The queue HTTP requests use (the same object unless Redis gives HTTP a connection of its own). */
  httpQueue: JobQueue;
  durability: DurabilityReport | null;
  store: VectorStore;
  db: SqliteDatabase | null;
  lock: DataDirLock | null;
  hostGuard: SingleHostGuard | null;
  sharedThroughput: SharedThroughput | null;
  pipeline: IngestPipeline;
  /** The HTTP API (roles all, api), or null. */
  app: App | null;
  /** The worker role's probes and metrics, or null. */
  workerApp: App | null;
  runsPipeline: boolean;
  servesHttp: boolean;
}

/**
 * Builds the server's parts from the settings and wires them: the composition root's first half
 * (main.ts runs the second, their lifecycle). Embedded defaults: one SQLite file holds queue and
 * vectors, so storing a batch and acknowledging it is one transaction.
 */
export async function buildComponents(
  settings: Settings,
  logger: Logger,
  hooks: StartHooks = {},
): Promise<Components> {
  // First, so that a settings error is thrown before any file or connection is opened.
  const metrics = new Metrics();
  const opened = openEmbedders(settings, logger, metrics);
  const { db, lock } = openSqliteFile(settings, logger);
  if (db) hooks.onDatabase?.(db);
  const { queue, httpQueue, durability } = await openQueue(settings, logger, db);
  const hostGuard = singleHostGuard(settings, logger);
  await hostGuard?.claim();
  const openedStore = openStore(settings, logger, db);
  const store = hooks.decorateStore ? hooks.decorateStore(openedStore.store) : openedStore.store;
  // One transaction for vectors + ack only when both live in the SQLite file; otherwise
  // upsert (idempotent, wait=true) then ack, which is exactly-once by deterministic point ids.
  const committer: BatchCommitter =
    db && openedStore.sqlite && store === openedStore.sqlite && queue instanceof SqliteJobQueue
      ? new SqliteAtomicCommitter(db, openedStore.sqlite, queue)
      : new SequentialCommitter(store, queue);
  const runsPipeline = settings.role !== "api";
  const servesHttp = settings.role !== "worker";
  const models = ModelRoster.of(
    opened.map(({ embedder, servedName }) => ({
      embedder: hooks.decorateEmbedder ? hooks.decorateEmbedder(embedder) : embedder,
      servedName,
    })),
  );
  const embedder = models.default.embedder;
  const state: ServerState = { model: null, shuttingDown: false };
  const health = new BackendHealth();
  const http = guardedForHttp(settings, { queue: httpQueue, store }, health);
  const httpModels = models.withEmbedders(guardedEmbedder);
  const throughput = new ThroughputMeter();
  const sharedThroughput = settings.queueUrl
    ? new SharedThroughput(settings.queueUrl, settings.queuePrefix, throughput, runsPipeline)
    : null;
  const drainRate: ThroughputSource = sharedThroughput ?? throughput;
  metrics.observeQueue(() => http.queue.stats());
  // Admission sees the queue through a decorator that counts accepted chunks.
  const admittedQueue = observeEnqueue(http.queue, (collection, _jobId, count) => {
    metrics.acceptedChunks(collection, count);
  });
  const admission = new Admission(
    admittedQueue,
    drainRate,
    httpModels.default.embedder,
    () => state.model,
    {
      maxQueueSize: settings.maxQueueSize,
      maxQueueTokens: settings.maxQueueTokens,
      maxChunksPerRequest: settings.maxChunksPerRequest,
      maxWindowsPerChunk: settings.maxWindowsPerChunk,
    },
    new CollectionBindings(http.store, httpModels, { distance: settings.qdrantDistance }),
  );
  const distance = settings.qdrantDistance;
  const pipeline = new IngestPipeline(
    { queue, store, embedder, models, committer, throughput, logger, metrics },
    {
      reserveMaxChunks: settings.reserveMaxChunks,
      // Bounds the work of one reservation (split chunks can be long); ~512 estimated tokens a chunk.
      reserveMaxTokens: settings.reserveMaxChunks * 512,
      leaseMs: settings.leaseSeconds * 1000,
      maxParallelTasks: settings.maxParallelTasks,
      maxRate: settings.embeddingMaxRate,
      maxAttempts: settings.maxAttempts,
      retryBaseMs: settings.retryBaseMs,
      retryMaxMs: settings.retryMaxMs,
      distance,
      idlePollMs: 500,
      sliceMaxTokens: settings.commitSliceTokens,
    },
  );

  const auth = {
    apiKeys: (settings.apiKeys ?? "").split(","),
    perKeyRequestsPerMinute: settings.apiKeyRateLimit,
  };
  const app = !servesHttp
    ? null
    : buildApp({
        logger,
        queue: http.queue,
        store: http.store,
        embedder: httpModels.default.embedder,
        models: httpModels,
        health,
        // The embedded queue's room can be measured; Redis's cannot (its 507s are remembered instead).
        ...(db && !settings.queueUrl
          ? { queueFreeBytes: () => sqliteFreeBytes(db, settings.sqliteFile) }
          : {}),
        admission,
        throughput: drainRate,
        model: () => state.model,
        isShuttingDown: () => state.shuttingDown,
        onEnqueued: () => {
          if (runsPipeline) pipeline.notify();
        },
        metrics,
        durability: () => durability,
        auth,
        limits: {
          maxQueueSize: settings.maxQueueSize,
          bodyLimitBytes: settings.bodyLimitBytes,
          bodyTimeoutMs: settings.bodyTimeoutSeconds * 1000,
          readyFailureMs: settings.readyFailureSeconds * 1000,
          seedCollection: settings.qdrantCollection,
          distance,
          defaultOverflow: { policy: settings.overflowPolicy, overlapTokens: settings.splitOverlapTokens },
        },
      });
  // A worker serves probes and metrics only, on its own port so it can share a host with an API.
  const workerApp = servesHttp
    ? null
    : buildWorkerApp({
        logger,
        metrics,
        model: () => state.model,
        isShuttingDown: () => state.shuttingDown,
        auth,
      });
  return {
    state,
    metrics,
    embedder,
    models,
    queue,
    httpQueue,
    durability,
    store,
    db,
    lock,
    hostGuard,
    sharedThroughput,
    pipeline,
    app,
    workerApp,
    runsPipeline,
    servesHttp,
  };
}

/**
 * Closes what buildComponents opened, users before what they use: the listeners, the embedder, the
 * queues and the store, the Redis-side helpers, then the SQLite file and the DATA_DIR lock. The
 * pipeline must be stopped first (main.ts does, with its timeout).
 */
export async function closeComponents(c: Components): Promise<void> {
  await c.app?.close();
  await c.workerApp?.close();
  await c.models.close();
  if (c.httpQueue !== c.queue) await c.httpQueue.close();
  await c.queue.close();
  await c.store.close();
  await c.hostGuard?.release();
  await c.sharedThroughput?.close();
  c.db?.close();
  c.lock?.release();
}

/**
 * The queue, the store and the embedder as HTTP requests use them: a failure that is theirs (down,
 * timed out, full) becomes the catalog's 503/507 with Retry-After within BACKEND_TIMEOUT_MS, never a
 * bare 500, and is recorded for /ready and /v1/status. The pipeline uses them unguarded: it has its
 * own retries.
 */
function guardedForHttp(
  settings: Settings,
  backends: { queue: JobQueue; store: VectorStore },
  health: BackendHealth,
): { queue: JobQueue; store: VectorStore } {
  const sqlite = (unavailable: "queue_unavailable" | "store_unavailable") => (error: unknown) =>
    classifySqliteError(error, { file: settings.sqliteFile, unavailable });
  const record = (name: BackendName) => (failure: AppError | null) =>
    failure ? health.failed(name, failure) : health.answered(name);
  return {
    queue: guardBackend(backends.queue, {
      label: "the queue",
      unavailable: "queue_unavailable",
      classify: settings.queueUrl ? classifyRedisError : sqlite("queue_unavailable"),
      timeoutMs: settings.backendTimeoutMs,
      onOutcome: record("queue"),
    }),
    store: guardBackend(backends.store, {
      label: "the vector store",
      unavailable: "store_unavailable",
      ...(settings.vectorStore === "sqlite" ? { classify: sqlite("store_unavailable") } : {}),
      timeoutMs: settings.backendTimeoutMs,
      onOutcome: record("store"),
    }),
  };
}

/** An embedder as HTTP requests use it: its failure is the catalog's 503 embedder_failed, never a bare 500. */
function guardedEmbedder(embedder: Embedder): Embedder {
  // No time limit: a query waits its turn behind the batch the embedder is working on.
  return guardBackend(embedder, {
    label: "the embedder",
    unavailable: "embedder_failed",
    classify: (error) =>
      new AppError(
        "embedder_failed",
        `The embedder failed: ${error instanceof Error ? error.message : String(error)}`,
        { retryAfterSeconds: 5, cause: error },
      ),
  });
}
