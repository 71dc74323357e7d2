import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { AppError, type ErrorCode, EXPECTED_CONDITIONS } from "../domain/errors.js";
import { ERROR_STATUS } from "./error-status.js";
import { describeValidation, type RawValidationError } from "./validation-problems.js";

interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: Record<string, unknown> };
}

/**
 * Answers with an error: its status from the one table (ERROR_STATUS), its Retry-After, and the
 * envelope every route documents. Every error answer of the app goes through here.
 */
export function sendError(reply: FastifyReply, error: AppError): FastifyReply {
  if (error.retryAfterSeconds !== undefined) reply.header("retry-after", String(error.retryAfterSeconds));
  const body: ErrorBody = { error: { code: error.code, message: error.message } };
  if (error.details) body.error.details = error.details;
  return reply.status(ERROR_STATUS[error.code]).send(body);
}

/** Translate framework errors (body parsing, validation) into the catalog's stable codes. */
function toAppError(error: FastifyError, request: FastifyRequest): AppError {
  if (error instanceof AppError) return error;
  if (error.validation) {
    const { code, message, problems } = describeValidation(
      error.validation as RawValidationError[],
      error.validationContext ?? "body",
    );
    return new AppError(code, message, { details: { problems: problems.slice(0, 10) } });
  }
  switch (error.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE": {
      const limit = request.routeOptions.bodyLimit;
      const sent = Number(request.headers["content-length"]);
      return new AppError(
        "payload_too_large",
        `The request body is larger than ${limit} bytes (BODY_LIMIT_BYTES)${Number.isFinite(sent) ? `: ${sent} bytes were sent` : ""}; send fewer chunks per request`,
        { details: { limit_bytes: limit, ...(Number.isFinite(sent) ? { content_length: sent } : {}) } },
      );
    }
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
    const error = toAppError(rawError, request);
    const status = ERROR_STATUS[error.code];
    // A 503 while the model loads or the server drains is the client's cue to retry, not a fault.
    if (status >= 500 && !EXPECTED_CONDITIONS.has(error.code))
      request.log.error({ err: rawError, code: error.code }, "request failed");
    else request.log.info({ code: error.code, message: error.message }, "request refused");
    return sendError(reply, error);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, new AppError("not_found", `No route ${request.method} ${request.url.split("?")[0]}`)),
  );
}
