import { accessSync, constants, existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import * as sqliteVec from "sqlite-vec";

export type SqliteDatabase = Database.Database;

/**
 * Opens the one SQLite file that holds queue and vectors in the embedded mode.
 * WAL lets readers run beside the writer and lets several processes on one host share the file;
 * synchronous=FULL makes a committed transaction survive power loss, not only a process crash,
 * which is what "durable before 202" promises; busy_timeout makes concurrent writers wait
 * instead of failing.
 */
export function openSqliteDatabase(file: string): SqliteDatabase {
  try {
    if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true });
    const db = new Database(file);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.pragma("busy_timeout = 10000");
    db.pragma("foreign_keys = ON");
    sqliteVec.load(db);
    return db;
  } catch (error) {
    throw new Error(`Cannot open the SQLite file ${file}: ${why(file, error)}`, { cause: error });
  }
}

/**
 * SQLite says "unable to open database file" or "attempt to write a readonly database" without a
 * path; the usual cause is a DATA_DIR that cannot be written (permissions, a read-only mount), or one
 * that cannot be created because its parent cannot be written.
 */
function why(file: string, error: unknown): string {
  const said = error instanceof Error ? error.message : String(error);
  if (file === ":memory:") return said;
  const dir = dirname(file);
  let existing = dir;
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  try {
    accessSync(existing, constants.W_OK);
    return said;
  } catch (access) {
    const code = (access as { code?: string }).code;
    const what =
      existing === dir
        ? `DATA_DIR ${dir} is not writable (${code})`
        : `DATA_DIR ${dir} cannot be created: ${existing} is not writable (${code})`;
    return `${what}; ${said}. Point DATA_DIR at a writable directory, or fix its permissions or its mount.`;
  }
}
