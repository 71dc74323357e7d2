/**
 * `rag-embedding-server` as a library: start the server in this process with the same settings as
 * `rag-embed serve` (environment variables, or flags by setting key), and the client SDK, which
 * `rag-embedding-server/client` also ships alone without loading anything of the server.
 */
export * from "./client/index.js";
export { loadSettings, type SettingKey, type Settings } from "./config/settings.js";
export {
  type HttpServer,
  type RunningServer,
  type StartHooks,
  startHttpServer,
  startServer,
} from "./main.js";
export { createLogger, type Logger } from "./observability/logger.js";
