/** `rag-embedding-server/client`: a typed client of the HTTP API. Loads nothing of the server. */

export type { ClientErrorCode } from "./errors.js";
export { RagEmbedError } from "./errors.js";
export {
  type IngestOptions,
  type IngestProgress,
  type IngestResult,
  RagEmbedClient,
  type RagEmbedClientOptions,
  type WaitForJobOptions,
} from "./rag-embed-client.js";
export { backoffMs, parseRetryAfter, retryDelayMs } from "./retry.js";
export type * from "./types.js";
