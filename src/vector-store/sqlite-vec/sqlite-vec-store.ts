import { logicalName, versionName, versionOf } from "../../domain/collection-versions.js";
import { AppError } from "../../domain/errors.js";
import { type ModelBinding, parseBinding } from "../../domain/model-binding.js";
import { WINDOW_TEXT_FIELD } from "../../domain/payload-fields.js";
import type {
  Distance,
  Payload,
  PointFingerprint,
  SearchFilter,
  SearchHit,
  WindowPlacement,
} from "../../domain/types.js";
import type { SqliteDatabase } from "../../storage/sqlite-database.js";
import { assertRecordFingerprints, assertSameBinding } from "../binding-checks.js";
import { checkWrites, fingerprintId, groupOf, writeResult } from "../chunk-writes.js";
import { chunkFromPoint } from "../stored-chunk.js";
import { assertQueryDimension, assertTopK, assertVectorDimensions } from "../vector-dimensions.js";
import {
  type ChunkScanPage,
  type ChunkWrite,
  type ChunkWriteResult,
  type CollectionDescription,
  type CollectionSpec,
  type DocumentDeletion,
  MAX_LISTED_CHUNK_IDS,
  type ParentRef,
  type StoredChunk,
  type StoredVersion,
  type VectorStore,
} from "../vector-store.js";
import { parentTextsByGroup, type StoredWindow } from "../window-text.js";
import { payloadFilterSql, placeholders } from "./payload-filter-sql.js";

/** Stays well under SQLite's bound-parameter limit, with room for the collection parameter. */
const FINGERPRINT_BATCH = 500;

type SupportedDistance = Exclude<Distance, "Dot">;

interface CollectionRow {
  name: string;
  dimension: number;
  distance: string;
  /** JSON ModelBinding; NULL for a collection made before bindings and not used since. */
  binding: string | null;
}

interface FingerprintRow {
  id: string;
  content_hash: string;
  payload_hash: string;
  version: number | null;
  model_fingerprint: string | null;
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

interface ScanRow {
  group_id: string;
  document_id: string | null;
  payload: string;
  version: number | null;
}

function storedChunk(row: ScanRow, parentText: string | undefined): StoredChunk {
  const point = {
    chunkId: row.group_id,
    documentId: row.document_id,
    payload: JSON.parse(row.payload) as Payload,
    version: row.version,
  };
  return chunkFromPoint(point, parentText);
}

interface WindowRow {
  group_id: string;
  payload: string;
  window_layout: string;
  version: number | null;
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
CREATE TABLE IF NOT EXISTS vs_aliases (
  alias TEXT PRIMARY KEY,
  collection TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
`;

/**
 * Columns added after the first release; older files get them on open.
 * - group_id is the client's chunk id for a whole chunk and for every window of a split chunk, so
 *   the points of one chunk can be found (and stale windows removed) whatever their number.
 * - version is the queued chunk's version a point was written from. NULL (points written before
 *   versions existed) counts as older than any version.
 * - window_layout (JSON WindowPlacement) is set on the windows of a split chunk: where each window's
 *   text sits in the chunk's text, so the chunk's text need not be stored beside its windows.
 * - model_fingerprint is the fingerprint of the embedding profile that made the point's vector; the
 *   collections table (the store's catalog) holds the profile itself as `binding`.
 */
function migrate(db: SqliteDatabase): void {
  const columns = db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('vs_points')").all();
  if (!columns.some((c) => c.name === "group_id")) {
    db.exec("ALTER TABLE vs_points ADD COLUMN group_id TEXT; UPDATE vs_points SET group_id = chunk_id;");
  }
  if (!columns.some((c) => c.name === "version")) {
    db.exec("ALTER TABLE vs_points ADD COLUMN version INTEGER");
  }
  if (!columns.some((c) => c.name === "window_layout")) {
    db.exec("ALTER TABLE vs_points ADD COLUMN window_layout TEXT");
  }
  if (!columns.some((c) => c.name === "model_fingerprint")) {
    db.exec("ALTER TABLE vs_points ADD COLUMN model_fingerprint TEXT");
  }
  const catalog = db
    .prepare<[], { name: string }>("SELECT name FROM pragma_table_info('vs_collections')")
    .all();
  if (!catalog.some((c) => c.name === "binding")) {
    db.exec("ALTER TABLE vs_collections ADD COLUMN binding TEXT");
  }
  db.exec("CREATE INDEX IF NOT EXISTS vs_points_group ON vs_points (collection, group_id)");
}

/**
 * Vectors in the same SQLite file as the queue, so the embedded mode can commit a batch's writes and
 * the queue ack in one transaction; each write's version check runs inside it, so nothing can come
 * between the check and the write. Search is exact brute force with sqlite-vec's scalar distance
 * functions: no ANN index to keep consistent, and fast enough for the collection sizes an embedded
 * deployment holds.
 */
export class SqliteVecStore implements VectorStore {
  private readonly db: SqliteDatabase;
  private readonly stmts: ReturnType<typeof prepareStatements>;
  private readonly writeTx: (collection: string, writes: ChunkWrite[]) => ChunkWriteResult[];
  private readonly deleteTx: (physical: string) => number;

  constructor(db: SqliteDatabase) {
    this.db = db;
    db.exec(SCHEMA);
    migrate(db);
    this.stmts = prepareStatements(db);

    // db.transaction nests as a savepoint inside a caller's transaction, which is what lets the
    // embedded pipeline wrap the writes and the ack in one outer transaction.
    this.writeTx = db.transaction((name: string, writes: ChunkWrite[]) => {
      // Point ids come from the name called with (an alias's, during a cutover); rows live under the target.
      const collection = this.resolve(name);
      const spec = this.requireCollection(collection);
      checkWrites(name, writes);
      assertRecordFingerprints(collection, spec.binding, writes);
      assertVectorDimensions(
        collection,
        writes.flatMap((w) => (w.kind === "points" ? w.records : [])),
        spec.dimension,
      );
      const now = new Date().toISOString();
      return writes.map((write) => this.writeOne(collection, fingerprintId(name, write), write, now));
    });
    // The check that no name reaches the collection and the delete in one transaction: a cutover or
    // rollback to it (an alias upsert) cannot come in between.
    this.deleteTx = db.transaction((physical: string) => {
      if (this.stmts.getCollection.get(physical) === undefined) {
        throw new AppError("collection_not_found", `Collection "${physical}" does not exist`, {
          details: { collection: physical },
        });
      }
      const logical = logicalName(physical);
      const reachedBy =
        this.resolve(logical) === physical ? logical : this.stmts.aliasTo.get(physical)?.alias;
      if (reachedBy !== undefined) {
        throw new AppError(
          "version_active",
          `Collection "${physical}" is what the name "${reachedBy}" reaches; point the name elsewhere first`,
          { details: { collection: physical, reached_by: reachedBy } },
        );
      }
      const deleted = this.stmts.deleteCollectionPoints.run(physical).changes;
      this.stmts.deleteCollection.run(physical);
      return deleted;
    });
  }

  async ensureCollection(requested: CollectionSpec): Promise<void> {
    const spec = { ...requested, name: this.resolve(requested.name) };
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
    const binding = spec.binding === undefined ? null : JSON.stringify(spec.binding);
    this.stmts.insertCollection.run(spec.name, spec.dimension, distance, new Date().toISOString(), binding);
    let existing = this.stmts.getCollection.get(spec.name);
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
    if (spec.binding !== undefined && existing.binding === null) {
      this.stmts.adopt.run(JSON.stringify({ ...spec.binding, adopted: true }), spec.name);
      existing = this.stmts.getCollection.get(spec.name) ?? existing;
    }
    assertSameBinding(spec.name, parseStoredBinding(existing.binding), spec.binding);
  }

  async describeCollection(collection: string): Promise<CollectionDescription | null> {
    const row = this.stmts.getCollection.get(this.resolve(collection));
    if (row === undefined) return null;
    return {
      name: collection,
      dimension: row.dimension,
      distance: row.distance as CollectionDescription["distance"],
      binding: parseStoredBinding(row.binding),
    };
  }

  /** One conditional UPDATE: of two processes adopting at once, the first wins and the second reads it. */
  async adoptCollection(name: string, binding: ModelBinding): Promise<ModelBinding> {
    const collection = this.resolve(name);
    this.stmts.adopt.run(JSON.stringify({ ...binding, adopted: true }), collection);
    const row = this.stmts.getCollection.get(collection);
    const stored = row === undefined ? null : parseStoredBinding(row.binding);
    if (stored === null) {
      throw new AppError("collection_not_found", `Collection "${collection}" does not exist`, {
        details: { collection },
      });
    }
    return stored;
  }

  async writeChunks(collection: string, writes: ChunkWrite[]): Promise<ChunkWriteResult[]> {
    return this.writeChunksSync(collection, writes);
  }

  /** Synchronous `writeChunks`, all-or-nothing; inside a caller's `db.transaction` it joins that transaction. */
  writeChunksSync(collection: string, writes: ChunkWrite[]): ChunkWriteResult[] {
    return this.writeTx(collection, writes);
  }

  async fingerprints(name: string, ids: string[]): Promise<Map<string, PointFingerprint>> {
    const collection = this.resolve(name);
    const result = new Map<string, PointFingerprint>();
    const unique = [...new Set(ids)];
    for (let start = 0; start < unique.length; start += FINGERPRINT_BATCH) {
      const batch = unique.slice(start, start + FINGERPRINT_BATCH);
      const rows = this.db
        .prepare<string[], FingerprintRow>(
          `SELECT id, content_hash, payload_hash, version, model_fingerprint FROM vs_points WHERE collection = ? AND id IN (${placeholders(batch.length)})`,
        )
        .all(collection, ...batch);
      for (const row of rows) {
        result.set(row.id, {
          contentHash: row.content_hash,
          payloadHash: row.payload_hash,
          version: row.version,
          ...(row.model_fingerprint === null ? {} : { modelFingerprint: row.model_fingerprint }),
        });
      }
    }
    return result;
  }

  /**
   * One chunk's write inside the call's transaction. Every statement carries the version rule
   * (stored version NULL or older), then the fingerprint point's version V decides the result and
   * every point of the chunk older than V goes.
   */
  private writeOne(
    collection: string,
    fingerprintPoint: string,
    write: ChunkWrite,
    now: string,
  ): ChunkWriteResult {
    if (write.kind === "points") {
      for (const r of write.records) {
        this.stmts.upsertPoint.run(
          collection,
          r.id,
          r.chunkId,
          groupOf(r),
          r.documentId,
          JSON.stringify(r.payload),
          r.contentHash,
          r.payloadHash,
          vectorBlob(r.vector),
          r.version,
          r.window === undefined ? null : JSON.stringify(r.window),
          r.modelFingerprint ?? null,
          now,
        );
      }
    } else {
      const id = fingerprintPoint;
      // The payload first: bumping the version first would make its own version check fail.
      if (write.payload !== null) {
        const { payload, payloadHash, documentId } = write.payload;
        this.stmts.touchPayload.run(
          JSON.stringify(payload),
          payloadHash,
          documentId,
          write.version,
          now,
          collection,
          id,
          write.contentHash,
          write.version,
        );
      }
      this.stmts.touchVersion.run(
        write.version,
        now,
        collection,
        write.chunkId,
        write.contentHash,
        write.version,
      );
    }
    const stored = this.stmts.fingerprint.get(collection, fingerprintPoint);
    if (stored?.version != null) this.stmts.deleteOlder.run(collection, write.chunkId, stored.version);
    return writeResult(write, stored && { version: stored.version, contentHash: stored.content_hash });
  }

  async deleteDocument(
    collection: string,
    documentId: string,
    belowVersion: number,
  ): Promise<DocumentDeletion> {
    return this.deleteDocumentSync(collection, documentId, belowVersion);
  }

  /** Synchronous `deleteDocument`, for callers inside a transaction of the same file. */
  deleteDocumentSync(name: string, documentId: string, belowVersion: number): DocumentDeletion {
    const rows = this.stmts.deleteDocumentBelow.all(this.resolve(name), documentId, belowVersion);
    const chunkIds = [...new Set(rows.map((r) => r.group_id))].slice(0, MAX_LISTED_CHUNK_IDS);
    return { deleted: rows.length, chunkIds };
  }

  async deleteChunkVersions(
    collection: string,
    chunks: ReadonlyArray<{ chunkId: string; version: number }>,
  ): Promise<number> {
    let deleted = 0;
    const target = this.resolve(collection);
    for (const { chunkId, version } of chunks) {
      deleted += this.stmts.deleteChunkVersion.run(target, chunkId, version).changes;
    }
    return deleted;
  }

  async search(
    name: string,
    vector: Float32Array,
    topK: number,
    filter?: SearchFilter,
  ): Promise<SearchHit[]> {
    assertTopK(topK);
    const collection = this.resolve(name);
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

  async parentTexts(name: string, parents: ParentRef[]): Promise<Map<string, string>> {
    const collection = this.resolve(name);
    const stored: Array<{ group: string; point: StoredWindow }> = [];
    const groups = [...new Set(parents.map((p) => p.chunkId))];
    for (let start = 0; start < groups.length; start += FINGERPRINT_BATCH) {
      const batch = groups.slice(start, start + FINGERPRINT_BATCH);
      const rows = this.db
        .prepare<string[], WindowRow>(
          `SELECT group_id, payload, window_layout, version FROM vs_points
           WHERE collection = ? AND group_id IN (${placeholders(batch.length)}) AND window_layout IS NOT NULL`,
        )
        .all(collection, ...batch);
      for (const row of rows) {
        stored.push({
          group: row.group_id,
          point: {
            version: row.version,
            text: (JSON.parse(row.payload) as Payload)[WINDOW_TEXT_FIELD],
            window: JSON.parse(row.window_layout) as WindowPlacement,
          },
        });
      }
    }
    return parentTextsByGroup(stored);
  }

  async count(collection: string): Promise<number> {
    return this.stmts.count.get(this.resolve(collection))?.n ?? 0;
  }

  /** One upsert of the alias row: atomic, like Qdrant's alias actions. */
  async setAlias(alias: string, collection: string): Promise<void> {
    // A collection's own name may point at one of its versions (`docs` → `docs__v2`, and back at
    // itself, its version 1): the alias row shadows the collection of that name.
    const ownVersion = logicalName(collection) === alias;
    if (!ownVersion && this.stmts.getCollection.get(alias) !== undefined) {
      throw new AppError(
        "invalid_request",
        `"${alias}" is the name of a collection; an alias needs a name of its own`,
        {
          details: { alias, collection },
        },
      );
    }
    if (this.stmts.getCollection.get(collection) === undefined) {
      throw new AppError("collection_not_found", `Collection "${collection}" does not exist`, {
        details: { collection },
      });
    }
    this.stmts.setAlias.run(alias, collection, new Date().toISOString());
  }

  async resolveAlias(name: string): Promise<string> {
    return this.resolve(name);
  }

  /**
   * One indexed range read of fingerprint points (an unsplit chunk's point, window 0 of a split
   * one) after `after` in chunk id order, then the split chunks' texts put back together.
   */
  async scanChunks(name: string, after: string | null, limit: number): Promise<ChunkScanPage> {
    const collection = this.resolve(name);
    const rows = this.stmts.scanGroups.all(collection, after ?? "", limit);
    const parents = rows.flatMap((row) => {
      const payload = JSON.parse(row.payload) as Payload;
      const windows = payload.window_count;
      return typeof windows === "number" ? [{ chunkId: row.group_id, windows }] : [];
    });
    const texts = parents.length > 0 ? await this.parentTexts(name, parents) : new Map<string, string>();
    const chunks = rows.map((row) => storedChunk(row, texts.get(row.group_id)));
    const last = rows.at(-1);
    return { chunks, nextCursor: rows.length === limit && last ? last.group_id : null };
  }

  /**
   * One range read of the catalog's primary key (`docs`, then `docs__v…`), names checked exactly
   * (`docs__v01` or `docs__v2x` are collections of their own), then one count per version.
   */
  async listVersions(logical: string): Promise<StoredVersion[]> {
    const rows = this.stmts.versionRows.all(logical, `${logical}__v`, `${logical}__w`);
    return rows
      .filter(
        (row) => logicalName(row.name) === logical && versionName(logical, versionOf(row.name)) === row.name,
      )
      .sort((a, b) => versionOf(a.name) - versionOf(b.name))
      .map((row) => ({
        name: row.name,
        dimension: row.dimension,
        distance: row.distance as StoredVersion["distance"],
        binding: parseStoredBinding(row.binding),
        points: this.stmts.count.get(row.name)?.n ?? 0,
      }));
  }

  /**
   * One transaction: the points (by the primary key's collection prefix) and the catalog row. Work
   * grows with the version's points, and the file is locked meanwhile: fine for the sizes an
   * embedded store holds, and all-or-nothing (a half-deleted version could be found again by a
   * later re-embed into the same name).
   */
  async deleteCollection(physical: string): Promise<number> {
    return this.deleteTx(physical);
  }

  /** The collection a name reaches: an alias's target, else the name itself (one indexed read). */
  private resolve(name: string): string {
    return this.stmts.alias.get(name)?.collection ?? name;
  }

  /** Reads the collections table: the file is there, readable and not damaged. */
  async ping(): Promise<void> {
    this.stmts.ping.get();
  }

  /** The database belongs to the caller (the queue shares it), so closing the store leaves it open. */
  async close(): Promise<void> {}

  private requireCollection(collection: string): {
    dimension: number;
    distance: SupportedDistance;
    binding: ModelBinding | null;
  } {
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
    return { dimension: row.dimension, distance: row.distance, binding: parseStoredBinding(row.binding) };
  }
}

function prepareStatements(db: SqliteDatabase) {
  return {
    ping: db.prepare("SELECT 1 FROM vs_collections LIMIT 1"),
    getCollection: db.prepare<[string], CollectionRow>(
      "SELECT name, dimension, distance, binding FROM vs_collections WHERE name = ?",
    ),
    insertCollection: db.prepare<[string, number, string, string, string | null]>(
      "INSERT INTO vs_collections (name, dimension, distance, created_at, binding) VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO NOTHING",
    ),
    alias: db.prepare<[string], { collection: string }>("SELECT collection FROM vs_aliases WHERE alias = ?"),
    // No index on the target: the alias table holds one row per versioned collection.
    aliasTo: db.prepare<[string], { alias: string }>(
      "SELECT alias FROM vs_aliases WHERE collection = ? ORDER BY alias LIMIT 1",
    ),
    versionRows: db.prepare<[string, string, string], CollectionRow>(
      `SELECT name, dimension, distance, binding FROM vs_collections
       WHERE name = ? OR (name >= ? AND name < ?)`,
    ),
    deleteCollectionPoints: db.prepare<[string]>("DELETE FROM vs_points WHERE collection = ?"),
    deleteCollection: db.prepare<[string]>("DELETE FROM vs_collections WHERE name = ?"),
    setAlias: db.prepare<[string, string, string]>(
      `INSERT INTO vs_aliases (alias, collection, updated_at) VALUES (?, ?, ?)
       ON CONFLICT(alias) DO UPDATE SET collection = excluded.collection, updated_at = excluded.updated_at`,
    ),
    adopt: db.prepare<[string, string]>(
      "UPDATE vs_collections SET binding = ? WHERE name = ? AND binding IS NULL",
    ),
    // The version rule: an existing point changes only when its version is NULL (written before
    // versions existed) or older than the one written.
    upsertPoint: db.prepare<
      [
        string,
        string,
        string,
        string,
        string | null,
        string,
        string,
        string,
        Buffer,
        number,
        string | null,
        string | null,
        string,
      ]
    >(
      `INSERT INTO vs_points
         (collection, id, chunk_id, group_id, document_id, payload, content_hash, payload_hash, vector, version,
          window_layout, model_fingerprint, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(collection, id) DO UPDATE SET
         chunk_id = excluded.chunk_id,
         group_id = excluded.group_id,
         document_id = excluded.document_id,
         payload = excluded.payload,
         content_hash = excluded.content_hash,
         payload_hash = excluded.payload_hash,
         vector = excluded.vector,
         version = excluded.version,
         window_layout = excluded.window_layout,
         model_fingerprint = excluded.model_fingerprint,
         updated_at = excluded.updated_at
       WHERE vs_points.version IS NULL OR vs_points.version < excluded.version`,
    ),
    touchPayload: db.prepare<[string, string, string | null, number, string, string, string, string, number]>(
      `UPDATE vs_points SET payload = ?, payload_hash = ?, document_id = ?, version = ?, updated_at = ?
       WHERE collection = ? AND id = ? AND content_hash = ? AND (version IS NULL OR version < ?)`,
    ),
    touchVersion: db.prepare<[number, string, string, string, string, number]>(
      `UPDATE vs_points SET version = ?, updated_at = ?
       WHERE collection = ? AND group_id = ? AND content_hash = ? AND (version IS NULL OR version < ?)`,
    ),
    fingerprint: db.prepare<[string, string], { content_hash: string; version: number | null }>(
      "SELECT content_hash, version FROM vs_points WHERE collection = ? AND id = ?",
    ),
    deleteOlder: db.prepare<[string, string, number]>(
      "DELETE FROM vs_points WHERE collection = ? AND group_id = ? AND (version IS NULL OR version < ?)",
    ),
    deleteDocumentBelow: db.prepare<[string, string, number], { group_id: string }>(
      `DELETE FROM vs_points WHERE collection = ? AND document_id = ? AND (version IS NULL OR version < ?)
       RETURNING group_id`,
    ),
    deleteChunkVersion: db.prepare<[string, string, number]>(
      "DELETE FROM vs_points WHERE collection = ? AND group_id = ? AND version = ?",
    ),
    scanGroups: db.prepare<[string, string, number], ScanRow>(
      `SELECT group_id, document_id, payload, version FROM vs_points
       WHERE collection = ? AND group_id > ? AND COALESCE(json_extract(payload, '$.window_index'), 0) = 0
       ORDER BY group_id LIMIT ?`,
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

function parseStoredBinding(json: string | null): ModelBinding | null {
  return json === null ? null : parseBinding(JSON.parse(json));
}

/**
 * sqlite-vec reads float32 little-endian blobs; Float32Array is in platform order, which is little-endian
 * on every platform Node ships prebuilt for. Viewing the same memory avoids a copy per vector.
 */
function vectorBlob(vector: Float32Array): Buffer {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);
}
