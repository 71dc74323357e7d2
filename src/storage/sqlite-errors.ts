import { dirname } from "node:path";
import { AppError } from "../domain/errors.js";

/** Seconds a client should wait after a full disk: space is rarely freed in less. */
const FULL_RETRY_AFTER_SECONDS = 30;
/** After a lock held too long or an I/O error: worth another try soon. */
const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

/**
 * SQLite failures that are about the file or its disk, not about the request, as the catalog's
 * codes: a full disk is `insufficient_storage` (507), a file that cannot be written, read, locked or
 * opened makes its user (`queue` or `store`, which share the file in the embedded mode) unavailable
 * (503). Anything else (a constraint, an SQL error) is a bug and is left alone: undefined.
 *
 * better-sqlite3 throws SqliteError with the extended result code in `code` (SQLITE_IOERR_WRITE).
 */
export function classifySqliteError(
  error: unknown,
  context: { file: string; unavailable: "queue_unavailable" | "store_unavailable" },
): AppError | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string" || !code.startsWith("SQLITE_")) return undefined;
  const { file } = context;
  const said = error instanceof Error ? error.message : code;
  const unavailable = (message: string) =>
    new AppError(context.unavailable, message, {
      retryAfterSeconds: UNAVAILABLE_RETRY_AFTER_SECONDS,
      details: { file, sqlite: code },
      cause: error,
    });
  switch (code.split("_").slice(0, 2).join("_")) {
    case "SQLITE_FULL":
      return new AppError(
        "insufficient_storage",
        `No space left for the SQLite file ${file} (${code}): free disk space in DATA_DIR ${dirname(file)}; everything accepted before is kept`,
        { retryAfterSeconds: FULL_RETRY_AFTER_SECONDS, details: { file, sqlite: code }, cause: error },
      );
    case "SQLITE_BUSY":
    case "SQLITE_LOCKED":
      return unavailable(
        `The SQLite file ${file} stayed locked by another process longer than its busy timeout (${code})`,
      );
    case "SQLITE_READONLY":
      return unavailable(
        `The SQLite file ${file} cannot be written (${code}: ${said}): check the permissions and the mount of ${dirname(file)}`,
      );
    case "SQLITE_IOERR":
    case "SQLITE_CANTOPEN":
    case "SQLITE_PROTOCOL":
      return unavailable(`The disk holding ${file} failed an operation (${code}: ${said})`);
    case "SQLITE_CORRUPT":
    case "SQLITE_NOTADB":
      return unavailable(`The SQLite file ${file} is damaged (${code}): restore it from a backup`);
    case "SQLITE_NOMEM":
      return unavailable(`SQLite ran out of memory working on ${file}`);
    default:
      return undefined;
  }
}
