import { existsSync, readdirSync, readFileSync } from "node:fs";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import Type from "typebox";
import type { App, AppDeps } from "../app.js";

/**
 * Ids of the jobs this process accepted, newest first, bounded. The queue has no "list jobs" query,
 * so the dashboard's recent jobs are the ones accepted through this server since it started.
 */
export class RecentJobs {
  private readonly ids: string[] = [];

  constructor(private readonly capacity = 200) {}

  add(jobId: string): void {
    this.ids.unshift(jobId);
    if (this.ids.length > this.capacity) this.ids.length = this.capacity;
  }

  list(limit: number): string[] {
    return this.ids.slice(0, limit);
  }
}

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

const RecentJobsQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 20 })),
});

/**
 * The live dashboard at `/` (static HTML/JS/CSS from src/server/dashboard, no CDN) and the recent
 * jobs it lists. The pages are public (they hold no data); the API calls they make carry the key the
 * user enters, kept in sessionStorage.
 */
export function registerDashboardRoutes(app: App, deps: AppDeps, recentJobs: RecentJobs): void {
  const assets = loadAssets();
  const send = (name: string) => {
    const asset = assets.get(name);
    return asset ? { ...asset } : null;
  };

  app.get(
    "/",
    {
      config: { public: true },
      schema: { summary: "Live dashboard (HTML)", tags: ["dashboard"], produces: ["text/html"] },
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
        summary: "Recent jobs accepted by this server process, newest first",
        description:
          "Jobs accepted through this process since it started (kept in memory, up to 200); jobs accepted by other processes sharing the queue are not listed.",
        tags: ["jobs"],
        querystring: RecentJobsQuery,
      },
    },
    async (request) => {
      const ids = recentJobs.list(request.query.limit ?? 20);
      const jobs = await Promise.all(ids.map((id) => deps.queue.getJob(id)));
      return {
        jobs: jobs.flatMap((job) =>
          job
            ? [
                {
                  id: job.id,
                  collection: job.collection,
                  state: job.state,
                  counts: job.counts,
                  created_at: job.createdAt,
                  updated_at: job.updatedAt,
                },
              ]
            : [],
        ),
      };
    },
  );
}
