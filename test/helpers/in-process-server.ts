import { loadSettings } from "../../src/config/settings.js";
import { type HttpServer, type StartHooks, startHttpServer } from "../../src/main.js";
import { createLogger } from "../../src/observability/logger.js";
import { tempDir, testModelDir } from "./paths.js";

/** The real server in this process (real SQLite, real model), for tests that need a hook inside. */
export async function startInProcess(
  env: Record<string, string>,
  hooks: StartHooks = {},
): Promise<HttpServer> {
  const settings = loadSettings({
    DATA_DIR: tempDir("inproc"),
    EMBEDDING_MODEL: testModelDir(),
    EMBEDDING_THREADS: "1",
    PORT: "0",
    LOG_LEVEL: "silent",
    ...env,
  });
  const server = await startHttpServer(settings, createLogger(settings.logLevel), hooks);
  await server.ready;
  return server;
}
