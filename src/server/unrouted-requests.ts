import type { FastifyInstance } from "fastify";
import { AppError } from "../domain/errors.js";

/**
 * Requests no route takes are answered before their body is read: 405 with an `Allow` header when
 * the path exists with other methods (RFC 9110), 404 otherwise. Left to Fastify's not-found route,
 * the body would be parsed first (a QUERY without a Content-Type got a 400) and every wrong method
 * looked like a missing path.
 *
 * Install before any route is added: routes are learnt from the onRoute hook.
 */
export function installUnroutedRequests(app: FastifyInstance): void {
  const paths = new Map<string, { pattern: RegExp; methods: Set<string> }>();
  app.addHook("onRoute", (route) => {
    const entry = paths.get(route.url) ?? { pattern: pathPattern(route.url), methods: new Set<string>() };
    for (const method of Array.isArray(route.method) ? route.method : [route.method])
      entry.methods.add(method);
    paths.set(route.url, entry);
  });

  app.addHook("onRequest", async (request, reply) => {
    if (!request.is404) return;
    const path = request.url.split("?")[0] ?? "/";
    const allowed = new Set<string>();
    for (const { pattern, methods } of paths.values()) {
      if (pattern.test(path)) for (const method of methods) allowed.add(method);
    }
    if (allowed.size === 0) throw new AppError("not_found", `No route ${request.method} ${path}`);
    const list = [...allowed].sort();
    reply.header("allow", list.join(", "));
    throw new AppError(
      "method_not_allowed",
      `${path} does not accept ${request.method}; use ${list.join(", ")}`,
      {
        details: { allowed: list },
      },
    );
  });
}

/** `/v1/jobs/:id` → /^\/v1\/jobs\/[^/]+$/; a trailing `*` matches the rest of the path. */
function pathPattern(url: string): RegExp {
  const source = url
    .split("/")
    .map((segment) => {
      if (segment === "*") return ".*";
      if (segment.startsWith(":")) return "[^/]+";
      return segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    })
    .join("/");
  return new RegExp(`^${source}$`);
}
