import { join } from "node:path";
import Database from "better-sqlite3";

/** What a version holds: points per model fingerprint (n), and distinct chunks among them (g). */
export type VersionRows = Array<{ f: string; n: number; g: number }>;

/** What the sqlite-vec collection (or version) `collection` of DATA_DIR's file holds, read directly. */
export function versionRows(dataDir: string, collection: string): VersionRows {
  const db = new Database(join(dataDir, "rag-embed.sqlite"), { readonly: true, fileMustExist: true });
  try {
    return db
      .prepare(
        "SELECT model_fingerprint AS f, COUNT(*) AS n, COUNT(DISTINCT group_id) AS g FROM vs_points WHERE collection = ? GROUP BY f ORDER BY f",
      )
      .all(collection) as VersionRows;
  } finally {
    db.close();
  }
}
