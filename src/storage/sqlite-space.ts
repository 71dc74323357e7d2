import { statfsSync } from "node:fs";
import { dirname } from "node:path";
import type { SqliteDatabase } from "./sqlite-database.js";

/**
 * Bytes the SQLite file can still take: its free pages, plus what it may grow by, which is the
 * lesser of the disk's free space (for an unprivileged process) and SQLite's own page limit
 * (`max_page_count`). Cheap (three pragmas and a statfs), so GET /v1/status can ask every time.
 */
export function sqliteFreeBytes(db: SqliteDatabase, file: string): number {
  const pragma = (name: string) => Number(db.pragma(name, { simple: true }));
  const pageSize = pragma("page_size");
  const growth = Math.max(0, pragma("max_page_count") - pragma("page_count")) * pageSize;
  const disk = statfsSync(dirname(file));
  return pragma("freelist_count") * pageSize + Math.min(growth, disk.bavail * disk.bsize);
}
