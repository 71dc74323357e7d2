import type { Logger } from "pino";
import { type Settings, SettingsError } from "./config/settings.js";
import type { DurabilityReport } from "./domain/durability.js";
import type { ModelInfo } from "./domain/types.js";
import type { Embedder } from "./embedder/embedder.js";
import { WorkerEmbedder } from "./embedder/worker-embedder.js";
import { Metrics, observeEnqueue } from "./observability/metrics.js";
import { ThroughputMeter, type ThroughputSource } from "./observability/throughput-meter.js";
import { type BatchCommitter, SequentialCommitter } from "./pipeline/batch-committer.js";
import { IngestPipeline } from "./pipeline/ingest-pipeline.js";
import { BullmqJobQueue } from "./queue/bullmq/bullmq-job-queue.js";
import type { JobQueue } from "./queue/job-queue.js";
import { openRedis } from "./queue/redis/redis-connection.js";
import { checkRedisDurability } from "./queue/redis/redis-durability.js";
import { SharedThroughput } from "./queue/redis/shared-throughput.js";
import { SingleHostGuard } from "./queue/redis/single-host-guard.js";
import { SqliteJobQueue } from "./queue/sqlite/sqlite-job-queue.js";
import { Admission } from "./server/admission.js";
import { type App, buildApp } from "./server/app.js";
import { buildWorkerApp } from "./server/worker-app.js";
import { SqliteAtomicCommitter } from "./storage/sqlite-atomic-committer.js";
import { openSqliteDatabase, type SqliteDatabase } from "./storage/sqlite-database.js";
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

/** The queue, and (Redis only) how durable its engine is configured to be; null = embedded SQLite. */
async function openQueue(
  settings: Settings,
  logger: Logger,
  db: SqliteDatabase | null,
): Promise<{ queue: JobQueue; durability: DurabilityReport | null }> {
  if (!settings.queueUrl) {
    if (!db) throw new Error("the SQLite queue needs the SQLite file");
    const queue = new SqliteJobQueue(db, {
      maxStalls: settings.maxStalls,
      jobRetentionMs: settings.jobRetentionMs,
      deadLetterRetentionMs: settings.deadLetterRetentionMs,
    });
    return { queue, durability: null };
  }
  const log = logger.child({ component: "bullmq-queue" });
  const queue = new BullmqJobQueue({
    url: settings.queueUrl,
    prefix: settings.queuePrefix,
    consume: settings.role !== "api",
    lockDurationMs: settings.leaseSeconds * 1000,
    maxStalls: settings.maxStalls,
    maxAttempts: settings.maxAttempts,
    jobRetentionMs: settings.jobRetentionMs,
    deadLetterRetentionMs: settings.deadLetterRetentionMs,
    onError: (error) => log.warn({ err: error }, "redis connection error"),
  });
  // A short-lived connection of its own: the check needs CONFIG/INFO only, and never throws.
  const probe = openRedis(settings.queueUrl, { maxRetriesPerRequest: 1, enableReadyCheck: false });
  probe.on("error", () => {}); // reported in the durability problems instead
  const durability = await checkRedisDurability(probe).finally(() => probe.disconnect());
  if (durability.problems.length > 0) {
    log.warn({ durability }, `Redis durability (${durability.severity}): ${durability.problems.join(" | ")}`);
  }
  return { queue, durability };
}

export async function startServer(
  settings: Settings,
  logger: Logger,
  hooks: StartHooks = {},
): Promise<RunningServer> {
  const usesSqlite = !settings.queueUrl || settings.vectorStore === "sqlite";
  const db = usesSqlite ? openSqliteDatabase(settings.sqliteFile) : null;
  const { queue, durability } = await openQueue(settings, logger, db);
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
  const workerEmbedder = new WorkerEmbedder(
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
  const embedder = hooks.decorateEmbedder ? hooks.decorateEmbedder(workerEmbedder) : workerEmbedder;
  const throughput = new ThroughputMeter();
  const sharedThroughput = settings.queueUrl
    ? new SharedThroughput(settings.queueUrl, settings.queuePrefix, throughput, runsPipeline)
    : null;
  const drainRate: ThroughputSource = sharedThroughput ?? throughput;
  let model: ModelInfo | null = null;
  const metrics = new Metrics();
  metrics.observeQueue(() => queue.stats());
  // Admission sees the queue through a decorator that counts accepted chunks.
  const admittedQueue = observeEnqueue(queue, (collection, _jobId, count) => {
    metrics.acceptedChunks(collection, count);
  });
  const admission = new Admission(admittedQueue, drainRate, embedder, () => model, {
    maxQueueSize: settings.maxQueueSize,
    maxQueueTokens: settings.maxQueueTokens,
    maxChunksPerRequest: settings.maxChunksPerRequest,
  });
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
        queue,
        store,
        embedder,
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

  const ready = embedder.load().then((info) => {
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
      await queue.close();
      await store.close();
      await hostGuard?.release();
      await sharedThroughput?.close();
      db?.close();
    })();
    return shutdownPromise;
  };

  return { app, url, ready, shutdown };
}
