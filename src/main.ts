import type { Logger } from "pino";
import { buildComponents, closeComponents, type StartHooks } from "./composition/components.js";
import { type Settings, SettingsError } from "./config/settings.js";
import type { ModelInfo } from "./domain/types.js";
import type { JobQueue } from "./queue/job-queue.js";
import type { App } from "./server/app.js";

export type { StartHooks } from "./composition/components.js";

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
 * The composition root: composition/adapters.ts chooses the adapters, composition/components.ts
 * wires them; this runs their lifecycle. Listen at once (probes answer while the model loads), load
 * the model, then start the pipeline and retention; on shutdown refuse new requests, finish or
 * release in-flight batches, and close everything.
 */
export async function startServer(
  settings: Settings,
  logger: Logger,
  hooks: StartHooks = {},
): Promise<RunningServer> {
  const parts = await buildComponents(settings, logger, hooks);
  const { state, app, workerApp, pipeline, runsPipeline, servesHttp } = parts;
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

  const retention = housekeeping(parts.queue, logger);
  const several = parts.models.size > 1;
  const ready = parts.models
    .load((info) => {
      if (several) logger.info({ model: info }, "model loaded");
    })
    .then((info) => {
      state.model = info;
      if (runsPipeline) {
        pipeline.start();
        retention.start();
      }
      logger.info(
        { model: info, ...where },
        runsPipeline ? "model loaded; pipeline started" : "model loaded",
      );
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
      state.shuttingDown = true;
      retention.stop();
      logger.info({ timeoutMs }, "shutting down: refusing new requests, finishing in-flight batches");
      const result = await pipeline.stop(timeoutMs);
      logger.info(result, "pipeline stopped");
      await closeComponents(parts);
    })();
    return shutdownPromise;
  };

  return { app, url, ready, shutdown };
}

/** Retention runs where the pipeline runs: one bounded pass a minute (and one at start). */
function housekeeping(queue: Pick<JobQueue, "maintain">, logger: Logger): { start(): void; stop(): void } {
  const log = logger.child({ component: "retention" });
  const pass = () =>
    queue.maintain().then(
      (result) => {
        if (result.expiredJobs + result.expiredDeadLetters > 0) log.info(result, "retention pass");
      },
      (error: unknown) => log.warn({ err: error }, "retention pass failed; retrying in a minute"),
    );
  let timer: NodeJS.Timeout | null = null;
  return {
    start() {
      void pass();
      timer = setInterval(pass, HOUSEKEEPING_INTERVAL_MS);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
    },
  };
}
