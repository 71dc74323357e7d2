import { type TypeBoxTypeProvider, TypeBoxValidatorCompiler } from "@fastify/type-provider-typebox";
import Fastify, { type FastifyBaseLogger, LogController } from "fastify";
import type { Logger } from "pino";
import { AppError, type ErrorCode } from "../domain/errors.js";
import type { ModelInfo } from "../domain/types.js";
import { WorkerHealth, WorkerReady } from "../wire/responses.js";
import type { App, AuthOptions } from "./app-deps.js";
import { installAuth } from "./auth.js";
import { installErrorHandler, sendError } from "./error-handler.js";
import type { Metrics } from "./metrics.js";
import { answers } from "./route-responses.js";
import { registerMetricsRoutes } from "./routes/metrics-routes.js";

export interface WorkerAppDeps {
  logger: Logger;
  /** The process's registry: pipeline metrics, and the shared queue's depth read at scrape time. */
  metrics: Metrics;
  /** The loaded model, or null while it loads; the pipeline starts as soon as it is loaded. */
  model(): ModelInfo | null;
  isShuttingDown(): boolean;
  /** The same keys as the API: /metrics and /ready need one when set, /health never does. */
  auth?: AuthOptions;
}

/**
 * The worker role's only HTTP surface (`WORKER_PORT`): probes for an orchestrator and the
 * Prometheus endpoint an autoscaler reads. No data route: a worker takes its work from the queue.
 */
export function buildWorkerApp(deps: WorkerAppDeps): App {
  const app: App = Fastify({
    loggerInstance: deps.logger.child({ component: "worker-http" }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.setValidatorCompiler(TypeBoxValidatorCompiler);
  installErrorHandler(app);
  if (deps.auth) installAuth(app, deps.auth);

  registerMetricsRoutes(app, deps.metrics);

  app.get("/health", { schema: { response: answers(WorkerHealth) } }, async () => ({
    status: "ok" as const,
    role: "worker" as const,
  }));

  /**
   * Ready = the model is loaded and the pipeline takes work. While draining on SIGTERM the worker
   * says 503 so a rollout waits for it, but unlike the API it keeps serving /metrics: the drain
   * itself is worth watching, and no client traffic needs steering away from a worker.
   * Not-ready is answered here rather than thrown: an expected probe result is no error to log.
   */
  app.get("/ready", { schema: { response: answers(WorkerReady) } }, async (_request, reply) => {
    const notReady = (code: ErrorCode, message: string, retryAfterSeconds: number) =>
      sendError(reply, new AppError(code, message, { retryAfterSeconds }));
    if (deps.isShuttingDown()) {
      return notReady("shutting_down", "The worker is finishing its in-flight batches", 5);
    }
    const model = deps.model();
    if (!model) return notReady("model_not_ready", "The model is still loading", 2);
    return { status: "ready" as const, role: "worker" as const, model: model.id };
  });
  return app;
}
