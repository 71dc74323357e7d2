import type { Logger } from "pino";
import { type Settings, SettingsError } from "./config/settings.js";
import type { DurabilityReport } from "./domain/durability.js";
import { AppError } from "./domain/errors.js";
import type { ModelInfo } from "./domain/types.js";
import { SqliteAtomicCommitter } from "./embedded/sqlite-atomic-committer.js";
import type { Embedder } from "./embedder/embedder.js";
import { RemoteEmbedder } from "./embedder/remote/remote-embedder.js";
import { remoteEmbedderOptions } from "./embedder/remote/remote-settings.js";
import { WorkerEmbedder } from "./embedder/worker-embedder.js";
import { DataDirLock, dataDirIsExclusive } from "./lifecycle/data-dir-lock.js";
import { ThroughputMeter, type ThroughputSource } from "./observability/throughput-meter.js";
import { type BatchCommitter, SequentialCommitter } from "./pipeline/batch-committer.js";
import { IngestPipeline } from "./pipeline/ingest-pipeline.js";
import { BullmqJobQueue } from "./queue/bullmq/bullmq-job-queue.js";
import type { JobQueue } from "./queue/job-queue.js";
import { openRedis } from "./queue/redis/redis-connection.js";
import { checkRedisDurability } from "./queue/redis/redis-durability.js";
import { classifyRedisError } from "./queue/redis/redis-errors.js";
import { SharedThroughput } from "./queue/redis/shared-throughput.js";
import { SingleHostGuard } from "./queue/redis/single-host-guard.js";
import { SqliteJobQueue } from "./queue/sqlite/sqlite-job-queue.js";
import { Admission } from "./server/admission.js";
import { type App, buildApp } from "./server/app.js";
import { guardBackend } from "./server/backend-guard.js";
import { BackendHealth, type BackendName } from "./server/backend-health.js";
import { CollectionBindings } from "./server/collection-bindings.js";
import { Metrics, observeEnqueue } from "./server/metrics.js";
import { RemoteEmbedderPrometheus } from "./server/remote-embedder-metrics.js";
import { buildWorkerApp } from "./server/worker-app.js";
import { assertWritableDataDir } from "./storage/data-dir.js";
import { openSqliteDatabase, type SqliteDatabase } from "./storage/sqlite-database.js";
import { classifySqliteError } from "./storage/sqlite-errors.js";
import { sqliteFreeBytes } from "./storage/sqlite-space.js";
import { QdrantStore } from "./vector-store/qdrant/qdrant-store.js";
import { SqliteVecStore } from "./vector-store/sqlite-vec/sqlite-vec-store.js";
import type { VectorStore } from "./vector-store/vector-store.js";

/** How often retention and housekeeping run (each pass is bounded, see JobQueue.maintain). */
const HOUSEKEEPING_INTERVAL_MS = 60_000;

export interface RunningServer {
  /** The HTTP API; null in the worker role, which serves only probes and metrics. */
  app: App | null;
  /** Where the API listens, or (worker role) its /health, /ready and /metrics on WORKER_PORT. */
  url: string | null;
  /** Resolves once the model is loaded and the pipeline runs; rejects if the model cannot load. */
  ready: Promise<ModelInfo>;
  /** Stop accepting, finish or release in-flight work, close everything. */
  shutdown(timeoutMs: number): Promise<void>;
}

export type HttpServer = RunningServer & { app: App; url: string };

/** startServer for roles that serve HTTP (all, api): the app and its URL are there. */
export async function startHttpServer(
  settings: Settings,
  logger: Logger,
  hooks: StartHooks = {},
): Promise<HttpServer> {
  if (settings.role === "worker") throw new SettingsError("the worker role serves no HTTP API");
  const server = await startServer(settings, logger, hooks);
  if (!server.app || server.url === null) throw new Error("an HTTP role started without an HTTP server");
  return { ...server, app: server.app, url: server.url };
}

/**
 * The composition root: the only place that chooses adapters. Embedded defaults: one SQLite file
 * holds queue and vectors, so storing a batch and acknowledging it is one transaction.
 */
export interface StartHooks {
  /**
   * Wrap the vector store (fault injection in tests, instrumentation). A wrapped store is no longer
   * the SQLite store itself, so batches commit store-then-ack, which is exactly-once by idempotent upsert.
   */
  decorateStore?: (store: VectorStore) => VectorStore;
  /** Wrap the embedder (fault injection in tests). */
  decorateEmbedder?: (embedder: Embedder) => Embedder;
  /** Called with the SQLite file once open (fault injection in tests: PRAGMA max_page_count = a full disk). */
  onDatabase?: (db: SqliteDatabase) => void;
}

function qdrantStore(settings: Settings, logger: Logger): VectorStore {
  if (!settings.resolvedQdrantUrl) {
    throw new SettingsError("VECTOR_STORE=qdrant needs QDRANT_URL (or QDRANT_HOST and QDRANT_PORT)");
  }
  return new QdrantStore({
    url: settings.resolvedQdrantUrl,
    apiKey: settings.qdrantApiKey,
    timeoutMs: settings.qdrantTimeoutMs,
    logger: logger.child({ component: "qdrant" }),
  });
}

/** EMBEDDER=local (the default): EMBEDDING_MODEL runs in a child process. */
function localEmbedder(settings: Settings, logger: Logger): Embedder {
  return new WorkerEmbedder(
    {
      model: settings.embeddingModel,
      dtype: settings.embeddingDtype,
      threads: settings.embeddingThreads,
      sessions: settings.embeddingSessions || settings.embeddingThreads,
      maxBatchTokens: settings.batchMaxTokens,
      maxBatchSize: settings.batchMaxSize,
      cacheDir: settings.resolvedModelCacheDir,
      profileOverrides: {
        passagePrefix: settings.embeddingPassagePrefix,
        queryPrefix: settings.embeddingQueryPrefix,
        maxTokens: settings.embeddingMaxTokens,
        pooling: settings.embeddingPooling,
      },
    },
    logger.child({ component: "embedder" }),
  );
}

/** EMBEDDER=remote: an engine over HTTP makes the vectors; its rag_embed_remote_* metrics join the server's. */
function remoteEmbedder(settings: Settings, logger: Logger, metrics: Metrics): Embedder {
  const remoteMetrics = new RemoteEmbedderPrometheus(metrics.registry);
  const embedder = new RemoteEmbedder(
    remoteEmbedderOptions(settings),
    logger.child({ component: "remote-embedder" }),
    remoteMetrics,
  );
  remoteMetrics.observe(() => embedder.status());
  return embedder;
}

/** The queue, and (Redis only) how durable its engine is configured to be; null = embedded SQLite. */
async function openQueue(
  settings: Settings,
  logger: Logger,
  db: SqliteDatabase | null,
): Promise<{ queue: JobQueue; httpQueue: JobQueue; durability: DurabilityReport | null }> {
  if (!settings.queueUrl) {
    if (!db) throw new Error("the SQLite queue needs the SQLite file");
    const queue = new SqliteJobQueue(db, {
      maxStalls: settings.maxStalls,
      jobRetentionMs: settings.jobRetentionMs,
      deadLetterRetentionMs: settings.deadLetterRetentionMs,
    });
    return { queue, httpQueue: queue, durability: null };
  }
  const log = logger.child({ component: "bullmq-queue" });
  const url = settings.queueUrl;
  const bullmqQueue = (consume: boolean) =>
    new BullmqJobQueue({
      url,
      prefix: settings.queuePrefix,
      consume,
      lockDurationMs: settings.leaseSeconds * 1000,
      maxStalls: settings.maxStalls,
      maxAttempts: settings.maxAttempts,
      jobRetentionMs: settings.jobRetentionMs,
      deadLetterRetentionMs: settings.deadLetterRetentionMs,
      commandTimeoutMs: settings.backendTimeoutMs,
      onError: (error) => log.warn({ err: error }, "redis connection error"),
    });
  const queue = bullmqQueue(settings.role !== "api");
  // HTTP requests go through a connection that fails fast (see BullmqJobQueue); a consuming one
  // waits for Redis, so the all role gives its HTTP side a queue of its own.
  const httpQueue = settings.role === "all" ? bullmqQueue(false) : queue;
  // A short-lived connection of its own: the check needs CONFIG/INFO only, and never throws.
  const probe = openRedis(settings.queueUrl, { maxRetriesPerRequest: 1, enableReadyCheck: false });
  probe.on("error", () => {}); // reported in the durability problems instead
  const durability = await checkRedisDurability(probe).finally(() => probe.disconnect());
  if (durability.problems.length > 0) {
    log.warn({ durability }, `Redis durability (${durability.severity}): ${durability.problems.join(" | ")}`);
  }
  return { queue, httpQueue, durability };
}

/**
 * The queue, the store and the embedder as HTTP requests use them: a failure that is theirs (down,
 * timed out, full) becomes the catalog's 503/507 with Retry-After within BACKEND_TIMEOUT_MS, never a
 * bare 500, and is recorded for /ready and /v1/status. The pipeline uses them unguarded: it has its
 * own retries.
 */
function guardedForHttp(
  settings: Settings,
  backends: { queue: JobQueue; store: VectorStore; embedder: Embedder },
  health: BackendHealth,
): { queue: JobQueue; store: VectorStore; embedder: Embedder } {
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
    // No time limit: a query waits its turn behind the batch the embedder is working on.
    embedder: guardBackend(backends.embedder, {
      label: "the embedder",
      unavailable: "embedder_failed",
      classify: (error) =>
        new AppError(
          "embedder_failed",
          `The embedder failed: ${error instanceof Error ? error.message : String(error)}`,
          {
            retryAfterSeconds: 5,
            cause: error,
          },
        ),
    }),
  };
}

/**
 * The embedded mode owns DATA_DIR: a second server there refuses to start (DataDirLockedError names
 * the first). Roles api and worker share the SQLite file on purpose, and say so.
 */
function claimDataDir(settings: Settings, logger: Logger): DataDirLock | null {
  if (!dataDirIsExclusive(settings)) {
    logger.info(
      { dataDir: settings.dataDir, role: settings.role },
      "DATA_DIR is shared on purpose (ROLE=api/worker or QUEUE_URL): other processes on this host may use its SQLite file",
    );
    return null;
  }
  const lock = DataDirLock.acquire(settings.dataDir);
  if (lock.tookOver) {
    logger.info({ previous: lock.tookOver }, "took over DATA_DIR from a server that is no longer running");
  }
  return lock;
}

export async function startServer(
  settings: Settings,
  logger: Logger,
  hooks: StartHooks = {},
): Promise<RunningServer> {
  // First, so that a settings error is thrown before any file or connection is opened.
  const metrics = new Metrics();
  const baseEmbedder =
    settings.embedder === "remote"
      ? remoteEmbedder(settings, logger, metrics)
      : localEmbedder(settings, logger);
  const usesSqlite = !settings.queueUrl || settings.vectorStore === "sqlite";
  if (usesSqlite) assertWritableDataDir(settings.dataDir);
  const lock = usesSqlite ? claimDataDir(settings, logger) : null;
  const db = usesSqlite ? openSqliteDatabase(settings.sqliteFile) : null;
  if (db) hooks.onDatabase?.(db);
  const { queue, httpQueue, durability } = await openQueue(settings, logger, db);
  // The SQLite store is shared through a local file: with a shared queue, refuse a second host.
  const hostGuard =
    settings.queueUrl && settings.vectorStore === "sqlite"
      ? new SingleHostGuard(settings.queueUrl, settings.queuePrefix, undefined, (otherHost) =>
          logger.error(
            { otherHost },
            "another host now uses the SQLite store with this queue (our claim lapsed while Redis was unreachable): stop one of them",
          ),
        )
      : null;
  await hostGuard?.claim();
  const sqliteStore = db ? new SqliteVecStore(db) : null;
  const baseStore: VectorStore =
    settings.vectorStore === "qdrant" || !sqliteStore ? qdrantStore(settings, logger) : sqliteStore;
  const store = hooks.decorateStore ? hooks.decorateStore(baseStore) : baseStore;
  // One transaction for vectors + ack only when both live in the SQLite file; otherwise
  // upsert (idempotent, wait=true) then ack, which is exactly-once by deterministic point ids.
  const committer: BatchCommitter =
    db && sqliteStore && store === sqliteStore && queue instanceof SqliteJobQueue
      ? new SqliteAtomicCommitter(db, sqliteStore, queue)
      : new SequentialCommitter(store, queue);
  const runsPipeline = settings.role !== "api";
  const servesHttp = settings.role !== "worker";
  const embedder = hooks.decorateEmbedder ? hooks.decorateEmbedder(baseEmbedder) : baseEmbedder;
  const health = new BackendHealth();
  const http = guardedForHttp(settings, { queue: httpQueue, store, embedder }, health);
  const throughput = new ThroughputMeter();
  const sharedThroughput = settings.queueUrl
    ? new SharedThroughput(settings.queueUrl, settings.queuePrefix, throughput, runsPipeline)
    : null;
  const drainRate: ThroughputSource = sharedThroughput ?? throughput;
  let model: ModelInfo | null = null;
  metrics.observeQueue(() => http.queue.stats());
  // Admission sees the queue through a decorator that counts accepted chunks.
  const admittedQueue = observeEnqueue(http.queue, (collection, _jobId, count) => {
    metrics.acceptedChunks(collection, count);
  });
  const admission = new Admission(
    admittedQueue,
    drainRate,
    http.embedder,
    () => model,
    {
      maxQueueSize: settings.maxQueueSize,
      maxQueueTokens: settings.maxQueueTokens,
      maxChunksPerRequest: settings.maxChunksPerRequest,
      maxWindowsPerChunk: settings.maxWindowsPerChunk,
    },
    new CollectionBindings(http.store),
  );
  const distance = settings.qdrantDistance;
  const pipeline = new IngestPipeline(
    { queue, store, embedder, committer, throughput, logger, metrics },
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

  let shuttingDown = false;
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
        embedder: http.embedder,
        health,
        // The embedded queue's room can be measured; Redis's cannot (its 507s are remembered instead).
        ...(db && !settings.queueUrl
          ? { queueFreeBytes: () => sqliteFreeBytes(db, settings.sqliteFile) }
          : {}),
        admission,
        throughput: drainRate,
        model: () => model,
        isShuttingDown: () => shuttingDown,
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
    : buildWorkerApp({ logger, metrics, model: () => model, isShuttingDown: () => shuttingDown, auth });
  const url = app
    ? await app.listen({ host: settings.host, port: settings.port })
    : ((await workerApp?.listen({ host: settings.host, port: settings.workerPort })) ?? null);
  const where = {
    role: settings.role,
    queue: settings.queueUrl ? "redis" : "sqlite",
    store: settings.vectorStore,
  };
  if (url)
    logger.info(
      { url, ...where, dataFile: settings.sqliteFile, model: settings.embeddingModel },
      "listening",
    );

  // Retention runs where the pipeline runs: one bounded pass a minute (and one at start).
  const housekeepingLog = logger.child({ component: "retention" });
  const housekeep = () =>
    queue.maintain().then(
      (result) => {
        if (result.expiredJobs + result.expiredDeadLetters > 0)
          housekeepingLog.info(result, "retention pass");
      },
      (error: unknown) => housekeepingLog.warn({ err: error }, "retention pass failed; retrying in a minute"),
    );
  let housekeeping: NodeJS.Timeout | null = null;

  const ready = embedder.load().then((loaded) => {
    const info = settings.servedModelName ? { ...loaded, servedName: settings.servedModelName } : loaded;
    model = info;
    if (runsPipeline) {
      pipeline.start();
      void housekeep();
      housekeeping = setInterval(housekeep, HOUSEKEEPING_INTERVAL_MS);
      housekeeping.unref();
    }
    logger.info({ model: info, ...where }, runsPipeline ? "model loaded; pipeline started" : "model loaded");
    if (!servesHttp) logger.info(where, "worker started");
    return info;
  });
  // The caller decides what a failed load means; this only keeps the rejection from going unseen.
  ready.catch((error: unknown) => logger.error({ err: error }, "model failed to load"));

  let shutdownPromise: Promise<void> | null = null;
  const shutdown = (timeoutMs: number): Promise<void> => {
    shutdownPromise ??= (async () => {
      // New requests get 503 while in-flight batches finish (or go back to the queue at the
      // timeout); only then does the listener close.
      shuttingDown = true;
      if (housekeeping) clearInterval(housekeeping);
      logger.info({ timeoutMs }, "shutting down: refusing new requests, finishing in-flight batches");
      const result = await pipeline.stop(timeoutMs);
      logger.info(result, "pipeline stopped");
      await app?.close();
      await workerApp?.close();
      await embedder.close();
      if (httpQueue !== queue) await httpQueue.close();
      await queue.close();
      await store.close();
      await hostGuard?.release();
      await sharedThroughput?.close();
      db?.close();
      lock?.release();
    })();
    return shutdownPromise;
  };

  return { app, url, ready, shutdown };
}
