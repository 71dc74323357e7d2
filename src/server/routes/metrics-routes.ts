import type { App } from "../app-deps.js";
import type { Metrics } from "../metrics.js";
import { answersAs } from "../route-responses.js";

/**
 * `GET /metrics` in the Prometheus text format, and per-request HTTP metrics (by route template,
 * never by raw URL, so ids in paths do not explode the label set). Like every route but /health it
 * needs a key when API_KEYS is set (Prometheus: `authorization: {credentials: <key>}`).
 */
export function registerMetricsRoutes(app: App, metrics: Metrics): void {
  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    metrics.requestServed(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
  });

  app.get(
    "/metrics",
    {
      schema: {
        summary: "Prometheus metrics (text exposition format)",
        description:
          "Queue depth (read from the queue at scrape time), accepted/stored/unchanged/failed/dead chunk counters by collection, embed and store durations, batch sizes, HTTP requests, and the Node process defaults.",
        tags: ["meta"],
        response: answersAs(["text/plain"], "The Prometheus text exposition"),
      },
    },
    async (_request, reply) => {
      const { contentType, body } = await metrics.scrape();
      return reply.type(contentType).send(body);
    },
  );
}
