import { existsSync, readdirSync, readFileSync } from "node:fs";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import Type from "typebox";
import { JobListQuery } from "../../wire/requests.js";
import { JobList } from "../../wire/responses.js";
import type { App, AppDeps } from "../app-deps.js";
import { jobSummaryBody } from "../job-bodies.js";
import { answers, answersAs } from "../route-responses.js";

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

/** src/server/dashboard next to this file's directory (tsx), or the source tree from dist/. */
function dashboardDir(): string {
  const here = fileURLToPath(new URL(".", import.meta.url));
  const candidates = [join(here, "../dashboard"), join(here, "../../../src/server/dashboard")];
  const found = candidates.find((dir) => existsSync(join(dir, "index.html")));
  if (!found) throw new Error(`dashboard assets not found in ${candidates.join(" or ")}`);
  return found;
}

/** Every asset read once at start-up: only these names can ever be served. */
function loadAssets(): Map<string, { type: string; body: Buffer }> {
  const dir = dashboardDir();
  const assets = new Map<string, { type: string; body: Buffer }>();
  for (const name of readdirSync(dir)) {
    const type = CONTENT_TYPES[extname(name)];
    if (type) assets.set(name, { type, body: readFileSync(join(dir, name)) });
  }
  return assets;
}

/**
 * The live dashboard at `/` (static HTML/JS/CSS from src/server/dashboard, no CDN) and the recent
 * jobs it lists. The pages are public (they hold no data); the API calls they make carry the key the
 * user enters, kept in sessionStorage.
 */
export function registerDashboardRoutes(app: App, deps: AppDeps): void {
  const assets = loadAssets();
  const send = (name: string) => {
    const asset = assets.get(name);
    return asset ? { ...asset } : null;
  };

  app.get(
    "/",
    {
      config: { public: true },
      schema: {
        summary: "Live dashboard (HTML)",
        tags: ["dashboard"],
        response: answersAs(["text/html"], "The dashboard page"),
      },
    },
    async (_request, reply) => {
      const page = send("index.html");
      return reply.type(page?.type ?? "text/plain").send(page?.body ?? "dashboard missing");
    },
  );

  app.get(
    "/dashboard/:file",
    {
      config: { public: true },
      schema: {
        summary: "Dashboard static assets",
        tags: ["dashboard"],
        response: answersAs(["text/javascript", "text/css", "image/svg+xml"], "The asset"),
        params: Type.Object({ file: Type.String({ pattern: "^[a-z0-9-]+\\.(js|css|svg)$" }) }),
      },
    },
    async (request, reply) => {
      const asset = send(request.params.file);
      if (!asset) return reply.callNotFound();
      return reply.header("cache-control", "no-cache").type(asset.type).send(asset.body);
    },
  );

  app.get(
    "/v1/jobs",
    {
      schema: {
        summary: "Jobs on record, work left first (queued, running), then finished ones; newest first",
        description:
          "Read from the queue, so every instance sharing it lists the same jobs, and they survive restarts. Finished jobs are kept for JOB_RETENTION. Filter by state and collection; page with cursor = next_cursor.",
        tags: ["jobs"],
        querystring: JobListQuery,
        response: answers(JobList),
      },
    },
    async (request) => {
      const { state, collection, cursor, limit = 20 } = request.query;
      const page = await deps.queue.listJobs({
        limit,
        ...(state ? { state } : {}),
        ...(collection ? { collection } : {}),
        ...(cursor ? { cursor } : {}),
      });
      return {
        jobs: page.items.map(jobSummaryBody),
        next_cursor: page.nextCursor,
      };
    },
  );
}
