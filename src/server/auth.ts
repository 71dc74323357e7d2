import { createHash, timingSafeEqual } from "node:crypto";
import rateLimit from "@fastify/rate-limit";
import type { FastifyReply, FastifyRequest } from "fastify";
import { AppError } from "../domain/errors.js";
import type { App, AuthOptions } from "./app-deps.js";

/** The keys that count: blank entries (`API_KEYS=""`, a trailing comma) are no keys. */
export function activeApiKeys(options: AuthOptions): string[] {
  return options.apiKeys.map((key) => key.trim()).filter((key) => key !== "");
}

/** Routes anyone may call: liveness probes cannot carry secrets. */
const PUBLIC_ROUTES = new Set(["GET /health", "HEAD /health"]);

const BEARER = /^Bearer +(\S+) *$/i;

type Limiter = ReturnType<App["createRateLimit"]>;

function sha256(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}

/**
 * Bearer-key authentication and an optional per-key rate limit, both in an onRequest hook so a
 * refused request is answered before its body is read or parsed.
 *
 * Keys are compared as sha256 digests with timingSafeEqual, against every configured key without
 * an early exit, so neither the key's length nor its position in the list shows in the timing.
 * Keys are never logged; a request is attributed to `key#N` (1-based position in the list).
 */
export function installAuth(app: App, options: AuthOptions): void {
  const keys = activeApiKeys(options);
  if (keys.length === 0) return;
  const digests = keys.map(sha256);
  const perMinute = Math.max(0, Math.floor(options.perKeyRequestsPerMinute));
  /** Which key authenticated a request; read by the rate limiter's key generator. */
  const keyIds = new WeakMap<FastifyRequest, string>();

  if (perMinute > 0) {
    // global: false — the plugin adds no per-route hooks; our hook calls the limiter itself, after
    // authentication, and turns "exceeded" into our own error (code rate_limited, our body shape).
    void app.register(rateLimit, {
      global: false,
      max: perMinute,
      timeWindow: 60_000,
      keyGenerator: (request) => keyIds.get(request) ?? "anonymous",
    });
  }
  let limiter: Limiter | undefined;

  const authenticate = (header: string | undefined): number => {
    const match = header === undefined ? null : BEARER.exec(header);
    // A malformed or missing header still costs one hash and a full pass over the keys.
    const presented = sha256(match?.[1] ?? "");
    let found = -1;
    for (let i = 0; i < digests.length; i++) {
      const equal = timingSafeEqual(presented, digests[i]!);
      if (equal && found === -1 && match) found = i;
    }
    return found;
  };

  app.addHook("onRequest", async (request: FastifyRequest, reply: FastifyReply) => {
    if (PUBLIC_ROUTES.has(`${request.method} ${request.routeOptions.url ?? ""}`)) return;
    if (request.routeOptions.config.public === true) return; // static docs/dashboard assets
    const index = authenticate(request.headers.authorization);
    if (index === -1) {
      const missing = request.headers.authorization === undefined;
      reply.header("www-authenticate", missing ? "Bearer" : 'Bearer error="invalid_token"');
      // The body, if any, is never read: close the connection instead of draining it.
      if (request.headers["content-length"] !== undefined || request.headers["transfer-encoding"]) {
        reply.header("connection", "close");
      }
      throw new AppError(
        "unauthorized",
        missing
          ? "Send an API key as 'Authorization: Bearer <key>'"
          : "The Authorization header is malformed or the API key is not valid",
      );
    }
    const keyId = `key#${index + 1}`;
    keyIds.set(request, keyId);
    request.log.debug({ apiKey: keyId }, "authenticated");

    if (perMinute === 0) return;
    limiter ??= app.createRateLimit();
    const result = await limiter(request);
    if (result.isAllowed) return;
    reply.header("x-ratelimit-limit", String(result.max));
    reply.header("x-ratelimit-remaining", String(result.remaining));
    reply.header("x-ratelimit-reset", String(result.ttlInSeconds));
    if (result.isExceeded) {
      if (request.headers["content-length"] !== undefined || request.headers["transfer-encoding"]) {
        reply.header("connection", "close");
      }
      throw new AppError(
        "rate_limited",
        `API key ${keyId} exceeded ${result.max} requests per minute; retry in ${result.ttlInSeconds} s`,
        {
          retryAfterSeconds: Math.max(1, result.ttlInSeconds),
          details: { limit_per_minute: result.max },
        },
      );
    }
  });
}
