import { AppError } from "../../domain/errors.js";
import type {
  Distance,
  Payload,
  PointFingerprint,
  SearchFilter,
  SearchHit,
  VectorRecord,
} from "../../domain/types.js";
import type { SqliteDatabase } from "../../storage/sqlite-database.js";
import { assertQueryDimension, assertTopK, assertVectorDimensions } from "../vector-dimensions.js";
import type { CollectionSpec, VectorStore } from "../vector-store.js";
import { payloadFilterSql, placeholders } from "./payload-filter-sql.js";

/** Stays well under SQLite's bound-parameter limit, with room for the collection parameter. */
const FINGERPRINT_BATCH = 500;

type SupportedDistance = Exclude<Distance, "Dot">;

export interface PayloadUpdate {
  id: string;
  payload: Payload;
  payloadHash: string;
  documentId: string | null;
}

interface CollectionRow {
  name: string;
  dimension: number;
  distance: string;
}

interface FingerprintRow {
  id: string;
  content_hash: string;
  payload_hash: string;
}

interface HitRow {
  id: string;
  chunk_id: string;
  payload: string;
  distance: number;
}

interface CountRow {
  n: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS vs_collections (
  name TEXT PRIMARY KEY,
  dimension INTEGER NOT NULL,
  distance TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS vs_points (
  collection TEXT NOT NULL,
  id TEXT NOT NULL,
  chunk_id TEXT NOT NULL,
  document_id TEXT,
  payload TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  payload_hash TEXT NOT NULL,
  vector BLOB NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (collection, id)
);
CREATE INDEX IF NOT EXISTS vs_points_document ON vs_points (collection, document_id);
`;

/**
 * group_id is the client's chunk id for a whole chunk and for every window of a split chunk, so
 * the points of one chunk can be found (and stale windows removed) whatever their number.
 * Added after the first release: older files get the column and a backfill.
 */
function migrate(db: SqliteDatabase): void {
  const columns = db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('vs_points')").all();
  if (!columns.some((c) => c.name === "group_id")) {
    db.exec("ALTER TABLE vs_points ADD COLUMN group_id TEXT; UPDATE vs_points SET group_id = chunk_id;");
  }
  db.exec("CREATE INDEX IF NOT EXISTS vs_points_group ON vs_points (collection, group_id)");
}

/**
 * Vectors in the same SQLite file as the queue, so the embedded mode can commit an upsert and the
 * queue ack in one transaction. Search is exact brute force with sqlite-vec's scalar distance
 * functions: no ANN index to keep consistent, and fast enough for the collection sizes an embedded
 * deployment holds.
 */
export class SqliteVecStore implements VectorStore {
  private readonly db: SqliteDatabase;
  private readonly stmts: ReturnType<typeof prepareStatements>;
  private readonly upsertTx: (collection: string, records: VectorRecord[]) => void;
  private readonly updatePayloadsTx: (collection: string, updates: PayloadUpdate[]) => void;

  constructor(db: SqliteDatabase) {
    this.db = db;
    db.exec(SCHEMA);
    migrate(db);
    this.stmts = prepareStatements(db);

    // db.transaction nests as a savepoint inside a caller's transaction, which is what lets the
    // embedded pipeline wrap upsert + ack in one outer transaction.
    this.upsertTx = db.transaction((collection: string, records: VectorRecord[]) => {
      const spec = this.requireCollection(collection);
      assertVectorDimensions(collection, records, spec.dimension);
      const now = new Date().toISOString();
      for (const r of records) {
        this.stmts.upsertPoint.run(
          collection,
          r.id,
          r.chunkId,
          r.parentChunkId ?? r.chunkId,
          r.documentId,
          JSON.stringify(r.payload),
          r.contentHash,
          r.payloadHash,
          vectorBlob(r.vector),
          now,
        );
      }
    });

    this.updatePayloadsTx = db.transaction((collection: string, updates: PayloadUpdate[]) => {
      this.requireCollection(collection);
      const now = new Date().toISOString();
      for (const u of updates) {
        this.stmts.updatePayload.run(
          JSON.stringify(u.payload),
          u.payloadHash,
          u.documentId,
          now,
          collection,
          u.id,
        );
      }
    });
  }

  async ensureCollection(spec: CollectionSpec): Promise<void> {
    const distance = supportedDistance(spec.distance);
    if (!Number.isInteger(spec.dimension) || spec.dimension < 1) {
      throw new AppError(
        "invalid_request",
        `Collection dimension must be a positive integer, got ${spec.dimension}`,
        {
          details: { collection: spec.name, dimension: spec.dimension },
        },
      );
    }
    // Insert-or-ignore then read back: another process may create the same collection concurrently,
    // and whichever shape won must be compared against, never overwritten.
    this.stmts.insertCollection.run(spec.name, spec.dimension, distance, new Date().toISOString());
    const existing = this.stmts.getCollection.get(spec.name);
    if (existing === undefined) throw new Error(`Collection "${spec.name}" vanished right after creation`);
    if (existing.dimension !== spec.dimension || existing.distance !== distance) {
      throw new AppError(
        "dimension_mismatch",
        `Collection "${spec.name}" exists with dimension ${existing.dimension} and distance ${existing.distance}; ` +
          `requested dimension ${spec.dimension} and distance ${distance}. Use another collection name or delete it first.`,
        {
          details: {
            collection: spec.name,
            existing: { dimension: existing.dimension, distance: existing.distance },
            requested: { dimension: spec.dimension, distance },
          },
        },
      );
    }
  }

  async upsert(collection: string, records: VectorRecord[]): Promise<void> {
    this.upsertSync(collection, records);
  }

  /** Synchronous upsert, all-or-nothing; inside a caller's `db.transaction` it joins that transaction. */
  upsertSync(collection: string, records: VectorRecord[]): void {
    this.upsertTx(collection, records);
  }

  async updatePayloads(collection: string, updates: PayloadUpdate[]): Promise<void> {
    this.updatePayloadsSync(collection, updates);
  }

  /** Synchronous counterpart of `updatePayloads`, for the same atomic-with-ack use as `upsertSync`. */
  updatePayloadsSync(collection: string, updates: PayloadUpdate[]): void {
    this.updatePayloadsTx(collection, updates);
  }

  async fingerprints(collection: string, ids: string[]): Promise<Map<string, PointFingerprint>> {
    const result = new Map<string, PointFingerprint>();
    const unique = [...new Set(ids)];
    for (let start = 0; start < unique.length; start += FINGERPRINT_BATCH) {
      const batch = unique.slice(start, start + FINGERPRINT_BATCH);
      const rows = this.db
        .prepare<string[], FingerprintRow>(
          `SELECT id, content_hash, payload_hash FROM vs_points WHERE collection = ? AND id IN (${placeholders(batch.length)})`,
        )
        .all(collection, ...batch);
      for (const row of rows)
        result.set(row.id, { contentHash: row.content_hash, payloadHash: row.payload_hash });
    }
    return result;
  }

  async deleteChunkRemnants(collection: string, chunkIds: string[], keepIds: string[]): Promise<number> {
    return this.deleteChunkRemnantsSync(collection, chunkIds, keepIds);
  }

  /** Synchronous counterpart, so the embedded commit can include it in its one transaction. */
  deleteChunkRemnantsSync(collection: string, chunkIds: string[], keepIds: string[]): number {
    if (chunkIds.length === 0) return 0;
    const keep = new Set(keepIds);
    let deleted = 0;
    for (let start = 0; start < chunkIds.length; start += 500) {
      const groups = chunkIds.slice(start, start + 500);
      const rows = this.db
        .prepare<string[], { id: string }>(
          `SELECT id FROM vs_points WHERE collection = ? AND group_id IN (${groups.map(() => "?").join(",")})`,
        )
        .all(collection, ...groups);
      for (const row of rows) {
        if (!keep.has(row.id)) deleted += this.stmts.deletePoint.run(collection, row.id).changes;
      }
    }
    return deleted;
  }

  async deleteByDocument(collection: string, documentId: string): Promise<number> {
    return this.stmts.deleteByDocument.run(collection, documentId).changes;
  }

  async search(
    collection: string,
    vector: Float32Array,
    topK: number,
    filter?: SearchFilter,
  ): Promise<SearchHit[]> {
    assertTopK(topK);
    const spec = this.requireCollection(collection);
    assertQueryDimension(collection, vector, spec.dimension);
    // sqlite-vec returns NULL cosine distance for a zero vector, and NULL sorts first; treating it as
    // orthogonal (similarity 0) is what Qdrant does after normalising a zero vector.
    const distanceSql =
      spec.distance === "Cosine"
        ? "COALESCE(vec_distance_cosine(p.vector, ?), 1.0)"
        : "vec_distance_l2(p.vector, ?)";
    const where = payloadFilterSql("p.payload", filter);
    const rows = this.db
      .prepare<unknown[], HitRow>(
        `SELECT p.id, p.chunk_id, p.payload, ${distanceSql} AS distance
         FROM vs_points AS p
         WHERE p.collection = ? AND ${where.sql}
         ORDER BY distance, p.id
         LIMIT ?`,
      )
      .all(vectorBlob(vector), collection, ...where.params, topK);
    return rows.map((row) => ({
      id: row.id,
      chunkId: row.chunk_id,
      score: spec.distance === "Cosine" ? 1 - row.distance : row.distance,
      payload: JSON.parse(row.payload) as Payload,
    }));
  }

  async count(collection: string): Promise<number> {
    return this.stmts.count.get(collection)?.n ?? 0;
  }

  /** The database belongs to the caller (the queue shares it), so closing the store leaves it open. */
  async close(): Promise<void> {}

  private requireCollection(collection: string): { dimension: number; distance: SupportedDistance } {
    const row = this.stmts.getCollection.get(collection);
    if (row === undefined) {
      throw new AppError("collection_not_found", `Collection "${collection}" does not exist`, {
        details: { collection },
      });
    }
    if (row.distance !== "Cosine" && row.distance !== "Euclid") {
      throw new AppError(
        "internal_error",
        `Collection "${collection}" has unsupported distance ${row.distance}`,
        {
          details: { collection, distance: row.distance },
        },
      );
    }
    return { dimension: row.dimension, distance: row.distance };
  }
}

function prepareStatements(db: SqliteDatabase) {
  return {
    getCollection: db.prepare<[string], CollectionRow>(
      "SELECT name, dimension, distance FROM vs_collections WHERE name = ?",
    ),
    insertCollection: db.prepare<[string, number, string, string]>(
      "INSERT INTO vs_collections (name, dimension, distance, created_at) VALUES (?, ?, ?, ?) ON CONFLICT(name) DO NOTHING",
    ),
    upsertPoint: db.prepare<
      [string, string, string, string, string | null, string, string, string, Buffer, string]
    >(
      `INSERT INTO vs_points
         (collection, id, chunk_id, group_id, document_id, payload, content_hash, payload_hash, vector, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(collection, id) DO UPDATE SET
         chunk_id = excluded.chunk_id,
         group_id = excluded.group_id,
         document_id = excluded.document_id,
         payload = excluded.payload,
         content_hash = excluded.content_hash,
         payload_hash = excluded.payload_hash,
         vector = excluded.vector,
         updated_at = excluded.updated_at`,
    ),
    updatePayload: db.prepare<[string, string, string | null, string, string, string]>(
      `UPDATE vs_points SET payload = ?, payload_hash = ?, document_id = ?, updated_at = ?
       WHERE collection = ? AND id = ?`,
    ),
    deletePoint: db.prepare<[string, string]>("DELETE FROM vs_points WHERE collection = ? AND id = ?"),
    deleteByDocument: db.prepare<[string, string]>(
      "DELETE FROM vs_points WHERE collection = ? AND document_id = ?",
    ),
    count: db.prepare<[string], CountRow>("SELECT COUNT(*) AS n FROM vs_points WHERE collection = ?"),
  };
}

function supportedDistance(distance: Distance): SupportedDistance {
  if (distance === "Cosine" || distance === "Euclid") return distance;
  if (distance === "Dot") {
    throw new AppError(
      "invalid_request",
      "Dot distance is not supported by the embedded sqlite-vec store; use Cosine or Euclid",
      { details: { distance } },
    );
  }
  throw new AppError(
    "invalid_request",
    `Unknown distance ${JSON.stringify(distance)}; use Cosine or Euclid`,
    {
      details: { distance },
    },
  );
}

/**
 * sqlite-vec reads float32 little-endian blobs; Float32Array is in platform order, which is little-endian
 * on every platform Node ships prebuilt for. Viewing the same memory avoids a copy per vector.
 */
function vectorBlob(vector: Float32Array): Buffer {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);
}
