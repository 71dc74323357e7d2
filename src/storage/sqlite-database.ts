import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import * as sqliteVec from "sqlite-vec";
import { unwritableReason } from "./data-dir.js";

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

/** SQLite's messages name no path; the usual cause is a DATA_DIR that cannot be written. */
function why(file: string, error: unknown): string {
  const said = error instanceof Error ? error.message : String(error);
  const reason = file === ":memory:" ? undefined : unwritableReason(dirname(file));
  if (reason === undefined) return said;
  return `${reason}; ${said}. Point DATA_DIR at a writable directory, or fix its permissions or its mount.`;
}
