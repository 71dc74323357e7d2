import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify, { type FastifyBaseLogger, type FastifyReply, LogController } from "fastify";
import { AppError } from "../domain/errors.js";
import type { App, AppDeps } from "./app-deps.js";
import { activeApiKeys, installAuth } from "./auth.js";
import { installBodyTimeout } from "./body-timeout.js";
import { installErrorHandler, sendError } from "./error-handler.js";
import { Metrics } from "./metrics.js";
import { registerOpenApi } from "./openapi.js";
import { registerDashboardRoutes } from "./routes/dashboard-routes.js";
import { registerDeadLetterRoutes } from "./routes/dead-letter-routes.js";
import { registerHealthRoutes } from "./routes/health-routes.js";
import { registerMetricsRoutes } from "./routes/metrics-routes.js";
import { registerOpenAiRoutes } from "./routes/openai-routes.js";
import { registerSeedRoutes } from "./routes/seed-routes.js";
import { registerStatusHistoryRoutes } from "./routes/status-history-routes.js";
import { registerV1Routes } from "./routes/v1-routes.js";
import { registerVersionAdminRoutes } from "./routes/version-admin-routes.js";
import { registerVersionRoutes } from "./routes/version-routes.js";
import { installUnroutedRequests } from "./unrouted-requests.js";
import { strictValidatorCompiler } from "./validator.js";

export type { App, AppDeps, AuthOptions } from "./app-deps.js";

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
      void sendError(reply as unknown as FastifyReply, new AppError("invalid_request", error.message));
    },
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.setValidatorCompiler(strictValidatorCompiler);
  installErrorHandler(app);
  // JSON only: a text/plain body must be refused as 415, not half-parsed into a 400.
  app.removeContentTypeParser("text/plain");
  if (deps.auth) installAuth(app, deps.auth);
  installUnroutedRequests(app);
  installBodyTimeout(app, deps.limits.bodyTimeoutMs);

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
  registerOpenApi(app, { keysRequired: deps.auth !== undefined && activeApiKeys(deps.auth).length > 0 });
  void app.register(async (api) => {
    registerMetricsRoutes(api, deps.metrics ?? new Metrics());
    registerHealthRoutes(api, deps);
    registerSeedRoutes(api, deps);
    registerV1Routes(api, deps);
    registerVersionRoutes(api, deps);
    registerVersionAdminRoutes(api, deps);
    registerDeadLetterRoutes(api, deps);
    registerOpenAiRoutes(api, deps);
    registerDashboardRoutes(api, deps);
    registerStatusHistoryRoutes(api, deps);
  });
  return app;
}
