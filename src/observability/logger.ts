import { type DestinationStream, type Logger, pino, stdSerializers } from "pino";
import pretty from "pino-pretty";
import { AppError, EXPECTED_CONDITIONS } from "../domain/errors.js";

export type { Logger };

/** json: one JSON object a line (log collectors); pretty: coloured, human-readable lines for a terminal. */
export type LogFormat = "json" | "pretty";

export interface LoggerOptions {
  format?: LogFormat;
  /** Where lines go (default stdout); tests pass a memory stream. */
  destination?: DestinationStream;
}

/**
 * Errors that belong to the server's normal life: the model still loading, a drain on SIGTERM, a
 * full queue (AppError codes in EXPECTED_CONDITIONS), work interrupted by a shutdown
 * (ProcessingError `expected`). Their stack traces say nothing an operator can act on.
 */
function isExpectedError(error: unknown): boolean {
  if (error instanceof AppError) return EXPECTED_CONDITIONS.has(error.code);
  return typeof error === "object" && error !== null && Reflect.get(error, "expected") === true;
}

function serializeError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const serialized = stdSerializers.err(error);
  if (!isExpectedError(error)) return serialized;
  const { stack: _stack, ...withoutStack } = serialized;
  return withoutStack;
}

export function createLogger(level: string, options: LoggerOptions = {}): Logger {
  const settings = {
    level,
    base: { service: "rag-embedding-server" },
    serializers: { err: serializeError },
  };
  if (options.format === "pretty") {
    // In this process and synchronous, so the last lines before process.exit are never lost.
    const stream = pretty({
      colorize: options.destination === undefined && process.stdout.isTTY === true,
      translateTime: "SYS:HH:MM:ss.l",
      ignore: "pid,hostname,service",
      sync: true,
      ...(options.destination ? { destination: options.destination } : {}),
    });
    return pino(settings, stream);
  }
  return options.destination ? pino(settings, options.destination) : pino(settings);
}
