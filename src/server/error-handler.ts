import type { FastifyError, FastifyInstance } from "fastify";
import { AppError, type ErrorCode, EXPECTED_CONDITIONS } from "../domain/errors.js";
import { ERROR_STATUS } from "./error-status.js";

interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: Record<string, unknown> };
}

/** Translate framework errors (body parsing, validation) into the catalog's stable codes. */
function toAppError(error: FastifyError): AppError {
  if (error instanceof AppError) return error;
  if (error.validation) {
    const problems = error.validation.slice(0, 10).map((v) => ({
      path: `${error.validationContext ?? "body"}${v.instancePath}`,
      message: v.message ?? "invalid",
    }));
    return new AppError("invalid_request", `Request ${error.validationContext ?? "body"} is invalid`, {
      details: { problems },
    });
  }
  switch (error.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new AppError("payload_too_large", error.message);
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new AppError("unsupported_media_type", "Send the body as application/json");
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new AppError("invalid_json", "The JSON body is empty");
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return new AppError("invalid_json", `The body is not valid JSON: ${error.message}`);
  }
  if (error instanceof SyntaxError || (error.statusCode === 400 && /JSON/i.test(error.message))) {
    return new AppError("invalid_json", `The body is not valid JSON: ${error.message}`);
  }
  if (error.statusCode === 404) return new AppError("not_found", error.message);
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return new AppError("invalid_request", error.message);
  }
  return new AppError("internal_error", "Internal error", { cause: error });
}

export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((rawError: FastifyError, request, reply) => {
    const error = toAppError(rawError);
    const status = ERROR_STATUS[error.code];
    // A 503 while the model loads or the server drains is the client's cue to retry, not a fault.
    if (status >= 500 && !EXPECTED_CONDITIONS.has(error.code))
      request.log.error({ err: rawError, code: error.code }, "request failed");
    else request.log.info({ code: error.code, message: error.message }, "request refused");
    if (error.retryAfterSeconds !== undefined) reply.header("retry-after", String(error.retryAfterSeconds));
    const body: ErrorBody = { error: { code: error.code, message: error.message } };
    if (error.details) body.error.details = error.details;
    return reply.status(status).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    const body: ErrorBody = {
      error: { code: "not_found", message: `No route ${request.method} ${request.url.split("?")[0]}` },
    };
    return reply.status(404).send(body);
  });
}
