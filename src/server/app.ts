import { type TypeBoxTypeProvider, TypeBoxValidatorCompiler } from "@fastify/type-provider-typebox";
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  LogController,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
} from "fastify";
import type { Logger } from "pino";
import type { DurabilityReport } from "../domain/durability.js";
import { AppError } from "../domain/errors.js";
import type { Distance, ModelInfo } from "../domain/types.js";
import type { Embedder } from "../embedder/embedder.js";
import { Metrics } from "../observability/metrics.js";
import type { ThroughputSource } from "../observability/throughput-meter.js";
import type { JobQueue } from "../queue/job-queue.js";
import type { VectorStore } from "../vector-store/vector-store.js";
import type { Admission, OverflowRequest } from "./admission.js";
import { type AuthOptions, installAuth } from "./auth.js";
import { installErrorHandler } from "./error-handler.js";
import { registerOpenApi } from "./openapi.js";
import { registerDashboardRoutes } from "./routes/dashboard-routes.js";
import { registerDeadLetterRoutes } from "./routes/dead-letter-routes.js";
import { registerHealthRoutes } from "./routes/health-routes.js";
import { registerMetricsRoutes } from "./routes/metrics-routes.js";
import { registerOpenAiRoutes } from "./routes/openai-routes.js";
import { registerSeedRoutes } from "./routes/seed-routes.js";
import { registerStatusHistoryRoutes } from "./routes/status-history-routes.js";
import { registerV1Routes } from "./routes/v1-routes.js";

export interface AppDeps {
  logger: Logger;
  queue: JobQueue;
  store: VectorStore;
  embedder: Embedder;
  admission: Admission;
  throughput: ThroughputSource;
  /** The loaded model, or null while it loads. */
  model(): ModelInfo | null;
  isShuttingDown(): boolean;
  /** Called after a request's chunks are durably queued (wakes the local pipeline). */
  onEnqueued(): void;
  /** API keys and per-key rate limit; no keys means no auth. */
  auth?: AuthOptions;
  /** Prometheus registry behind GET /metrics (a fresh one if not given). */
  metrics?: Metrics;
  /** The queue engine's durability for GET /v1/status; absent or null = the embedded SQLite queue. */
  durability?: () => DurabilityReport | null;
  limits: {
    maxQueueSize: number;
    bodyLimitBytes: number;
    seedCollection: string;
    distance: Distance;
    defaultOverflow: OverflowRequest;
  };
}

export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/** Builds the HTTP app from its dependencies; it never chooses an adapter itself. */
export function buildApp(deps: AppDeps): App {
  const app: App = Fastify({
    loggerInstance: deps.logger.child({ component: "http" }) as FastifyBaseLogger,
    bodyLimit: deps.limits.bodyLimitBytes,
    // One structured line per request comes from the onResponse hook below, at debug level.
    logController: new LogController({ disableRequestLogging: true }),
    // Job ids and chunk ids may be long; refusing long URLs with a clear error is the router's job.
    routerOptions: { maxParamLength: 1024 },
    // Errors the router raises before any route runs (a malformed percent-encoding in the URL) get
    // the same envelope as every other error.
    frameworkErrors: (error, _request, reply) => {
      // The hook's reply is typed for an unknown route generic; it is a plain reply here.
      void (reply as unknown as FastifyReply)
        .status(400)
        .send({ error: { code: "invalid_request", message: error.message } });
    },
  }).withTypeProvider<TypeBoxTypeProvider>();
  // Bodies are validated without coercion (a number is not silently a string); query strings are
  // coerced, since everything in a URL arrives as text.
  app.setValidatorCompiler(TypeBoxValidatorCompiler);
  installErrorHandler(app);
  // JSON only: a text/plain body must be refused as 415, not half-parsed into a 400.
  app.removeContentTypeParser("text/plain");
  if (deps.auth) installAuth(app, deps.auth);

  app.addHook("onRequest", async (request) => {
    if (deps.isShuttingDown() && !request.url.startsWith("/health")) {
      throw new AppError("shutting_down", "The server is shutting down; send to another instance or retry", {
        retryAfterSeconds: 5,
      });
    }
  });
  app.addHook("onResponse", async (request, reply) => {
    request.log.debug(
      {
        method: request.method,
        url: request.url,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      "request",
    );
  });

  // OpenAPI first, and the routes in a plugin registered after it, so every route is documented.
  registerOpenApi(app);
  void app.register(async (api) => {
    registerMetricsRoutes(api, deps.metrics ?? new Metrics());
    registerHealthRoutes(api, deps);
    registerSeedRoutes(api, deps);
    registerV1Routes(api, deps);
    registerDeadLetterRoutes(api, deps);
    registerOpenAiRoutes(api, deps);
    registerDashboardRoutes(api, deps);
    registerStatusHistoryRoutes(api, deps);
  });
  return app;
}

/** The request's overflow choice over the server default. */
export function overflowFor(
  deps: AppDeps,
  policy?: OverflowRequest["policy"],
  overlapTokens?: number,
): OverflowRequest {
  return {
    policy: policy ?? deps.limits.defaultOverflow.policy,
    overlapTokens: overlapTokens ?? deps.limits.defaultOverflow.overlapTokens,
  };
}

export function requireModel(deps: AppDeps): ModelInfo {
  const model = deps.model();
  if (!model) throw new AppError("model_not_ready", "The model is still loading", { retryAfterSeconds: 2 });
  return model;
}
