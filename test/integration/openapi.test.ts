import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { OpenAPIBackend } from "openapi-backend";
import type { HttpServer } from "../../src/main.js";
import type { App } from "../../src/server/app.js";
import { startInProcess } from "../helpers/in-process-server.js";

interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, { security?: unknown[]; responses?: Record<string, unknown> }>>;
}

/**
 * Every route of the app as "METHOD /path", read from Fastify's own route tree
 * (`printRoutes({ commonPrefix: false })`: one node per line, indented 4 columns per level).
 * Each parsed route is checked with `app.hasRoute`, so a misparse cannot pass silently.
 */
function appRoutes(app: App): string[] {
  const stack: string[] = [];
  const routes: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split("\n")) {
    const at = line.indexOf("── ");
    if (at === -1) continue;
    const depth = (at - 1) / 4;
    const match = /^(\S+)(?: \(([A-Z, ]+)\))?$/.exec(line.slice(at + 3).trim());
    assert.ok(match, `route tree line: ${line}`);
    stack.length = depth;
    stack.push(match[1]!);
    const url = stack.join("");
    for (const method of (match[2] ?? "").split(", ").filter(Boolean)) {
      if (method === "HEAD" || method === "OPTIONS") continue;
      // (find-my-way's hasRoute does not match wildcard routes such as the docs UI's /docs/*.)
      if (!url.includes("*"))
        assert.ok(app.hasRoute({ method, url }), `parsed route exists: ${method} ${url}`);
      routes.push(`${method} ${url}`);
    }
  }
  return routes;
}

describe("GET /openapi.json and the /docs UI", () => {
  let server: HttpServer;
  let document: OpenApiDocument;

  before(async () => {
    server = await startInProcess({});
    const response = await fetch(`${server.url}/openapi.json`);
    assert.equal(response.status, 200);
    document = (await response.json()) as OpenApiDocument;
  });
  after(async () => {
    await server.shutdown(5_000);
  });

  it("is a valid OpenAPI 3 document (openapi-backend, strict)", async () => {
    assert.match(document.openapi, /^3\./);
    const api = new OpenAPIBackend({
      definition: structuredClone(document) as never,
      strict: true,
      validate: true,
      quick: false,
    });
    await api.init(); // strict: throws with the validator's errors if the document is invalid
    assert.doesNotThrow(() => api.validateDefinition());
  });

  it("lists every route of the app (only the docs UI's own assets are hidden)", () => {
    const routes = appRoutes(server.app);
    assert.ok(routes.length >= 20, `found ${routes.length} routes`);
    const documented = new Set(
      Object.entries(document.paths).flatMap(([path, operations]) =>
        Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`),
      ),
    );
    const missing = routes.filter((route) => {
      const [method, url] = route.split(" ") as [string, string];
      if (url === "/docs" || url.startsWith("/docs/")) return false; // Swagger UI's own pages
      return !documented.has(`${method} ${url.replace(/:([A-Za-z0-9_]+)/g, "{$1}")}`);
    });
    assert.deepEqual(missing, [], "routes missing from /openapi.json");
    for (const route of [
      "POST /v1/embeddings",
      "GET /metrics",
      "GET /",
      "GET /v1/jobs",
      "POST /test/embed",
      "POST /v1/dead-letters/replay",
    ]) {
      assert.ok(documented.has(route), `${route} documented`);
    }
    assert.ok(routes.includes("GET /docs/json"), "the docs UI's routes were seen (and skipped)");
  });

  it("asks for no key when the server runs without API_KEYS", () => {
    const raw = document as OpenApiDocument & {
      security?: unknown;
      components?: { securitySchemes?: unknown };
    };
    assert.equal(raw.security, undefined);
    assert.equal(raw.components?.securitySchemes, undefined);
    for (const [path, operations] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        assert.equal(operation.security, undefined, `${method.toUpperCase()} ${path}`);
      }
    }
  });

  it("documents each response's media type: errors are JSON even where the route serves text", () => {
    const metrics = document.paths["/metrics"]?.get?.responses as Record<string, { content?: object }>;
    assert.deepEqual(Object.keys(metrics["200"]?.content ?? {}), ["text/plain"]);
    assert.deepEqual(Object.keys(metrics["4XX"]?.content ?? {}), ["application/json"]);
    assert.deepEqual(Object.keys(metrics["5XX"]?.content ?? {}), ["application/json"]);
  });

  it("documents 202 where work is accepted, and the error envelope on every route", () => {
    const responses = (path: string, method: string) =>
      Object.keys(document.paths[path]?.[method]?.responses ?? {});
    assert.deepEqual(responses("/test/embed", "post").sort(), ["202", "4XX", "5XX"]);
    assert.deepEqual(responses("/v1/collections/{collection}/chunks", "post").sort(), ["202", "4XX", "5XX"]);
    assert.deepEqual(responses("/v1/collections/{collection}/documents/{document_id}", "put").sort(), [
      "202",
      "4XX",
      "5XX",
    ]);
    assert.deepEqual(responses("/v1/jobs/{id}", "get").sort(), ["200", "4XX", "5XX"]);
    for (const [path, operations] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        assert.ok(operation.responses?.["4XX"], `${method.toUpperCase()} ${path} documents its errors`);
      }
    }
  });

  it("documents every route with a summary and the schema of its answer", () => {
    const undocumented: string[] = [];
    for (const [path, operations] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const op = operation as {
          summary?: string;
          responses?: Record<string, { content?: Record<string, { schema?: object }> }>;
        };
        const success = Object.entries(op.responses ?? {}).filter(([status]) => /^2/.test(status));
        const described =
          success.length > 0 &&
          success.every(([, response]) =>
            Object.values(response.content ?? {}).some((media) => Object.keys(media.schema ?? {}).length > 0),
          );
        if (!op.summary || !described) undocumented.push(`${method.toUpperCase()} ${path}`);
      }
    }
    assert.deepEqual(undocumented, [], "routes without a summary or a success schema");
    const status = document.paths["/v1/status"]?.get?.responses?.["200"] as {
      content: { "application/json": { schema: { properties: Record<string, unknown> } } };
    };
    assert.ok(status.content["application/json"].schema.properties.backends, "/v1/status lists backends");
  });

  it("documents the rules the server enforces: non-empty batches, non-blank text, exactly one selector", () => {
    const body = (path: string, method: string) =>
      (
        document.paths[path]?.[method] as {
          requestBody?: { content: Record<string, { schema: Record<string, unknown> }> };
        }
      )?.requestBody?.content["application/json"]?.schema;
    const native = body("/v1/collections/{collection}/chunks", "post") as {
      properties: { chunks: { minItems: number; items: { properties: { text: { pattern: string } } } } };
    };
    assert.equal(native.properties.chunks.minItems, 1);
    assert.ok(!new RegExp(native.properties.chunks.items.properties.text.pattern).test(" \t\u00a0\ufeff"));
    assert.ok(new RegExp(native.properties.chunks.items.properties.text.pattern).test(" x "));
    const selector = body("/v1/dead-letters/replay", "post") as {
      anyOf: Array<{ additionalProperties: boolean }>;
    };
    assert.equal(selector.anyOf.length, 3);
    assert.ok(selector.anyOf.every((branch) => branch.additionalProperties === false));
  });

  it("serves the Swagger UI from the server itself (no CDN)", async () => {
    const page = await fetch(`${server.url}/docs/static/index.html`);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /swagger-ui/i);
    assert.doesNotMatch(html, /https?:\/\/(?!localhost|127\.0\.0\.1)[^"' ]+\.(js|css)/, "no external assets");
    const redirect = await fetch(`${server.url}/docs`, { redirect: "manual" });
    assert.ok([200, 302].includes(redirect.status));
    const initializer = await (await fetch(`${server.url}/docs/static/swagger-initializer.js`)).text();
    assert.match(initializer, /json/);
  });
});

describe("GET /openapi.json with API_KEYS set", () => {
  let server: HttpServer;
  let document: OpenApiDocument & { security?: unknown };

  before(async () => {
    server = await startInProcess({ API_KEYS: "k1" });
    const response = await fetch(`${server.url}/openapi.json`);
    assert.equal(response.status, 200, "the document is public");
    document = (await response.json()) as OpenApiDocument & { security?: unknown };
  });
  after(async () => {
    await server.shutdown(5_000);
  });

  it("asks for the bearer key everywhere but the public routes", () => {
    assert.deepEqual(document.security, [{ bearerAuth: [] }]);
    assert.deepEqual(document.paths["/health"]?.get?.security, [], "/health needs no key");
    assert.deepEqual(document.paths["/openapi.json"]?.get?.security, []);
    assert.equal(document.paths["/metrics"]?.get?.security, undefined, "/metrics inherits the key");
  });
});
