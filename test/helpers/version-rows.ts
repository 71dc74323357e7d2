import { join } from "node:path";
import Database from "better-sqlite3";
import { logicalName } from "../../src/domain/collection-versions.js";
import type { QdrantContractServer } from "./qdrant-contract-server.js";

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

/**
 * What the double's physical collection holds (version 1 of `docs` is the collection `docs__v1` behind
 * the alias `docs`; later versions are collections of their own names).
 */
export function qdrantRows(qdrant: QdrantContractServer, version: string): VersionRows {
  const physical = logicalName(version) === version ? `${version}__v1` : version;
  const byFingerprint = new Map<string, { n: number; groups: Set<string> }>();
  for (const point of qdrant.collection(physical)?.points.values() ?? []) {
    const rag = point.payload._rag as { model_fingerprint?: string; group_id?: string };
    const entry = byFingerprint.get(rag.model_fingerprint ?? "") ?? { n: 0, groups: new Set<string>() };
    entry.n += 1;
    entry.groups.add(rag.group_id ?? "");
    byFingerprint.set(rag.model_fingerprint ?? "", entry);
  }
  return [...byFingerprint].sort().map(([f, { n, groups }]) => ({ f, n, g: groups.size }));
}
