import { AppError } from "../../domain/errors.js";
import type { App, AppDeps } from "../app-deps.js";
import { requireModel } from "../app-deps.js";
import type { BackendName } from "../backend-health.js";

const BACKENDS: ReadonlyArray<{
  name: BackendName;
  label: string;
  code: "queue_unavailable" | "store_unavailable";
}> = [
  { name: "queue", label: "queue", code: "queue_unavailable" },
  { name: "store", label: "vector store", code: "store_unavailable" },
];

export function registerHealthRoutes(app: App, deps: AppDeps): void {
  app.get("/health", async () => ({ status: "ok" }));

  /**
   * Ready means the model is loaded and both the queue and the vector store answer: each is asked
   * (a bounded call: BACKEND_TIMEOUT_MS) on every probe. One failing for READY_FAILURE_SECONDS makes
   * the instance not ready (503 with Retry-After), so a balancer stops sending it work; a shorter
   * blip is only reported.
   */
  app.get("/ready", async () => {
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
    return { status: "ready", model: model.id, ...report };
  });
}
