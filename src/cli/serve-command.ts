import { loadSettings, type SettingKey } from "../config/settings.js";
import { startServer } from "../main.js";
import { createLogger } from "../observability/logger.js";

/** `rag-embed serve`: run the server until SIGTERM/SIGINT, then shut down without losing work. */
export async function serveCommand(flags: Partial<Record<SettingKey, string>>): Promise<void> {
  const settings = loadSettings(process.env, flags);
  const logger = createLogger(settings.logLevel, { format: settings.logFormat });
  const server = await startServer(settings, logger);

  let exiting = false;
  const exit = (code: number, reason: string) => {
    if (exiting) return;
    exiting = true;
    logger.info({ reason }, "stopping");
    server.shutdown(settings.shutdownTimeoutSeconds * 1000).then(
      () => {
        logger.info({ code }, "stopped");
        process.exit(code);
      },
      (error: unknown) => {
        logger.fatal({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => exit(0, "SIGTERM"));
  process.on("SIGINT", () => exit(0, "SIGINT"));
  server.ready.catch(() => exit(1, "model failed to load"));
}
