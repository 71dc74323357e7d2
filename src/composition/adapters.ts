import type { Logger } from "pino";
import type { ModelSpec } from "../config/model-specs.js";
import { type Settings, SettingsError } from "../config/settings.js";
import type { DurabilityReport } from "../domain/durability.js";
import type { Embedder } from "../embedder/embedder.js";
import { RemoteEmbedder } from "../embedder/remote/remote-embedder.js";
import { remoteEmbedderOptions } from "../embedder/remote/remote-settings.js";
import { WorkerEmbedder } from "../embedder/worker-embedder.js";
import { DataDirLock, dataDirIsExclusive } from "../lifecycle/data-dir-lock.js";
import { BullmqJobQueue } from "../queue/bullmq/bullmq-job-queue.js";
import type { JobQueue } from "../queue/job-queue.js";
import { openRedis } from "../queue/redis/redis-connection.js";
import { checkRedisDurability } from "../queue/redis/redis-durability.js";
import { SingleHostGuard } from "../queue/redis/single-host-guard.js";
import { SqliteJobQueue } from "../queue/sqlite/sqlite-job-queue.js";
import type { Metrics } from "../server/metrics.js";
import { RemoteEmbedderPrometheus } from "../server/remote-embedder-metrics.js";
import { assertWritableDataDir } from "../storage/data-dir.js";
import { openSqliteDatabase, type SqliteDatabase } from "../storage/sqlite-database.js";
import { QdrantStore } from "../vector-store/qdrant/qdrant-store.js";
import { SqliteVecStore } from "../vector-store/sqlite-vec/sqlite-vec-store.js";
import type { VectorStore } from "../vector-store/vector-store.js";

/**
 * The adapters the settings choose, each opened on its own (a new queue engine, store or embedder is
 * chosen here). components.ts wires what these return; main.ts runs their lifecycle.
 */

/**
 * EMBEDDER=local (the default) runs each served model (EMBEDDING_MODELS, else EMBEDDING_MODEL) in a
 * child process of its own; EMBEDDER=remote calls one engine.
 */
export function openEmbedders(
  settings: Settings,
  logger: Logger,
  metrics: Metrics,
): Array<{ embedder: Embedder; servedName?: string | undefined }> {
  if (settings.embedder === "remote") {
    return [{ embedder: remoteEmbedder(settings, logger, metrics), servedName: settings.servedModelName }];
  }
  const several = settings.models.length > 1;
  return settings.models.map((spec) => ({
    embedder: localEmbedder(settings, spec, several ? logger.child({ model: spec.servedName }) : logger),
    servedName: spec.servedName,
  }));
}

function localEmbedder(settings: Settings, spec: ModelSpec, logger: Logger): Embedder {
  return new WorkerEmbedder(
    {
      model: spec.model,
      dtype: spec.dtype,
      threads: spec.threads,
      sessions: spec.sessions || spec.threads,
      maxBatchTokens: settings.batchMaxTokens,
      maxBatchSize: settings.batchMaxSize,
      cacheDir: settings.resolvedModelCacheDir,
      profileOverrides: spec.overrides,
    },
    logger.child({ component: "embedder" }),
  );
}

/** Its rag_embed_remote_* metrics join the server's. */
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

/** The SQLite file and the lock on DATA_DIR, when the queue or the store lives in it; else nulls. */
export function openSqliteFile(
  settings: Settings,
  logger: Logger,
): { db: SqliteDatabase | null; lock: DataDirLock | null } {
  const usesSqlite = !settings.queueUrl || settings.vectorStore === "sqlite";
  if (!usesSqlite) return { db: null, lock: null };
  assertWritableDataDir(settings.dataDir);
  const lock = claimDataDir(settings, logger);
  return { db: openSqliteDatabase(settings.sqliteFile), lock };
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

export interface OpenedQueue {
  /** The pipeline's queue (consuming, unless the role is api). */
  queue: JobQueue;
  /** The queue HTTP requests use: a second, fail-fast connection in the all role on Redis. */
  httpQueue: JobQueue;
  /** How durable Redis is configured to be; null for the embedded SQLite queue. */
  durability: DurabilityReport | null;
}

/** QUEUE_URL unset: the SQLite queue in the SQLite file; set: BullMQ on Redis. */
export async function openQueue(
  settings: Settings,
  logger: Logger,
  db: SqliteDatabase | null,
): Promise<OpenedQueue> {
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
 * The SQLite store is shared through a local file: with a shared (Redis) queue, a claim refuses a
 * second host. Null when that combination is not in use.
 */
export function singleHostGuard(settings: Settings, logger: Logger): SingleHostGuard | null {
  if (!settings.queueUrl || settings.vectorStore !== "sqlite") return null;
  return new SingleHostGuard(settings.queueUrl, settings.queuePrefix, undefined, (otherHost) =>
    logger.error(
      { otherHost },
      "another host now uses the SQLite store with this queue (our claim lapsed while Redis was unreachable): stop one of them",
    ),
  );
}

/**
 * VECTOR_STORE=sqlite: the vectors in the SQLite file (`sqlite` is that store itself, for the one-
 * transaction commit); qdrant: Qdrant, and nothing of the SQLite store is built, so the SQLite file
 * (open for the embedded queue) gets no vector tables.
 */
export function openStore(
  settings: Settings,
  logger: Logger,
  db: SqliteDatabase | null,
): { store: VectorStore; sqlite: SqliteVecStore | null } {
  if (settings.vectorStore === "sqlite") {
    if (!db) throw new Error("the SQLite store needs the SQLite file");
    const sqlite = new SqliteVecStore(db);
    return { store: sqlite, sqlite };
  }
  if (!settings.resolvedQdrantUrl) {
    throw new SettingsError("VECTOR_STORE=qdrant needs QDRANT_URL (or QDRANT_HOST and QDRANT_PORT)");
  }
  const store = new QdrantStore({
    url: settings.resolvedQdrantUrl,
    apiKey: settings.qdrantApiKey,
    timeoutMs: settings.qdrantTimeoutMs,
    logger: logger.child({ component: "qdrant" }),
  });
  return { store, sqlite: null };
}
