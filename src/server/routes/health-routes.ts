import type { App, AppDeps } from "../app.js";
import { requireModel } from "../app.js";

export function registerHealthRoutes(app: App, deps: AppDeps): void {
  app.get("/health", async () => ({ status: "ok" }));

  /** Ready means the model is loaded and work will be processed, not only accepted. */
  app.get("/ready", async () => {
    const model = requireModel(deps);
    return { status: "ready", model: model.id };
  });
}
