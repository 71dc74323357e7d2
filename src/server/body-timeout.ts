import { PassThrough } from "node:stream";
import type { FastifyInstance } from "fastify";
import { AppError } from "../domain/errors.js";

/**
 * A request body must arrive whole within `timeoutMs` of being started. A client trickling a byte
 * every few seconds would otherwise hold its connection (and a parser buffer) forever: it gets
 * `408 request_timeout` and its connection is closed.
 *
 * The body is read through a pass-through stream that fails at the deadline; failing the request
 * stream itself would destroy the socket before the 408 could be written.
 */
export function installBodyTimeout(app: FastifyInstance, timeoutMs: number): void {
  app.addHook("preParsing", async (request, reply, payload) => {
    const hasBody =
      request.headers["transfer-encoding"] !== undefined ||
      (request.headers["content-length"] !== undefined && request.headers["content-length"] !== "0");
    if (!hasBody) return payload;
    const body = new PassThrough();
    const timer = setTimeout(() => {
      payload.unpipe(body);
      reply.header("connection", "close");
      body.destroy(
        new AppError(
          "request_timeout",
          `The request body did not arrive within ${timeoutMs / 1000} s (BODY_TIMEOUT_SECONDS); the connection is closed`,
          { details: { timeout_seconds: timeoutMs / 1000 } },
        ),
      );
    }, timeoutMs);
    payload.once("end", () => clearTimeout(timer));
    payload.once("close", () => clearTimeout(timer));
    payload.pipe(body);
    return body;
  });
}
