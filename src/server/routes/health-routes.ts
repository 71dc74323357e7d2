import { AppError } from "../../domain/errors.js";
import { Health, Ready } from "../../wire/responses.js";
import { type App, type AppDeps, requireModel } from "../app-deps.js";
import type { BackendName } from "../backend-health.js";
import { answers } from "../route-responses.js";

const BACKENDS: ReadonlyArray<{
  name: BackendName;
  label: string;
  code: "queue_unavailable" | "store_unavailable";
}> = [
  { name: "queue", label: "queue", code: "queue_unavailable" },
  { name: "store", label: "vector store", code: "store_unavailable" },
];

export function registerHealthRoutes(app: App, deps: AppDeps): void {
  app.get(
    "/health",
    {
      schema: {
        summary: "Liveness: the process answers (no key needed)",
        tags: ["meta"],
        response: answers(Health),
      },
    },
    async () => ({ status: "ok" as const }),
  );

  /**
   * Ready means the model is loaded and both the queue and the vector store answer: each is asked
   * (a bounded call: BACKEND_TIMEOUT_MS) on every probe. One failing for READY_FAILURE_SECONDS makes
   * the instance not ready (503 with Retry-After), so a balancer stops sending it work; a shorter
   * blip is only reported.
   */
  app.get(
    "/ready",
    {
      schema: {
        summary: "Readiness: the model is loaded and the queue and the store answer (503 otherwise)",
        tags: ["meta"],
        response: answers(Ready),
      },
    },
    async () => {
      const model = requireModel(deps);
      // Failures are recorded in deps.health by the guarded calls; nothing to catch here.
      await Promise.allSettled([deps.queue.stats(), deps.store.ping()]);
      const report = { queue: deps.health.report("queue"), store: deps.health.report("store") };
      const failing = BACKENDS.find(({ name }) => deps.health.failingFor(name, deps.limits.readyFailureMs));
      if (failing) {
        const { error, failing_since: since } = report[failing.name];
        throw new AppError(
          failing.code,
          `Not ready: the ${failing.label} has been failing since ${since}: ${error?.message ?? "unknown error"}`,
          { retryAfterSeconds: 5, details: report },
        );
      }
      return { status: "ready" as const, model: model.id, ...report };
    },
  );
}
