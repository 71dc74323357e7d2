import type { ErrorCode } from "../domain/errors.js";

/** The one table from error code to HTTP status. */
export const ERROR_STATUS: Record<ErrorCode, number> = {
  invalid_json: 400,
  invalid_request: 400,
  empty_batch: 400,
  empty_text: 400,
  duplicate_chunk_id: 400,
  text_too_long: 422,
  payload_too_large: 413,
  unsupported_media_type: 415,
  queue_full: 429,
  not_found: 404,
  job_not_found: 404,
  collection_not_found: 404,
  model_not_ready: 503,
  shutting_down: 503,
  dimension_mismatch: 409,
  store_unavailable: 503,
  queue_unavailable: 503,
  insufficient_storage: 507,
  method_not_allowed: 405,
  embedder_failed: 502,
  internal_error: 500,
  unauthorized: 401,
  rate_limited: 429,
  model_not_found: 404,
};
