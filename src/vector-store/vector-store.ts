import type { ModelBinding } from "../domain/model-binding.js";
import type {
  Distance,
  Payload,
  PointFingerprint,
  SearchFilter,
  SearchHit,
  VectorRecord,
} from "../domain/types.js";

export interface CollectionSpec {
  name: string;
  dimension: number;
  distance: Distance;
  /**
   * The embedding profile the collection's vectors come from: recorded when the collection is
   * created, or when an existing collection without one (made before bindings) is first ensured.
   */
  binding?: ModelBinding;
}

/** What a store knows of a collection. */
export interface CollectionDescription {
  name: string;
  dimension: number;
  distance: Distance;
  /** Null for a collection made before bindings, not yet used since (it is bound on first use). */
  binding: ModelBinding | null;
}

/** One version of a collection as stored, under its own (physical) name, whatever the aliases say. */
export interface StoredVersion extends CollectionDescription {
  /** Points stored in this version (a split chunk has one per window). */
  points: number;
}

/** A chunk's new points: one, or one per window of a split chunk. */
export interface PointsWrite {
  kind: "points";
  /** The client's chunk id: every point of the chunk (all its windows) belongs to this group. */
  chunkId: string;
  version: number;
  /**
   * All carry `version`. Exactly one has the chunk's own point id (the unsplit point, or window 0):
   * it carries the chunk's fingerprint.
   */
  records: VectorRecord[];
}

/** The chunk's content is unchanged: its points move to `version` without new vectors. */
export interface TouchWrite {
  kind: "touch";
  chunkId: string;
  version: number;
  /** Only points with this content hash move; any other means the chunk changed since it was planned. */
  contentHash: string;
  /** New payload of an unsplit chunk's one point; null when only the version moves. */
  payload: PayloadChange | null;
}

export interface PayloadChange {
  payload: Payload;
  payloadHash: string;
  documentId: string | null;
}

export type ChunkWrite = PointsWrite | TouchWrite;

/** A stored chunk as its client sent it: what a re-embedding reads back from the old version. */
export interface StoredChunk {
  chunkId: string;
  documentId: string | null;
  payload: Payload;
  /** Null when the store cannot give it back (a split chunk with a window missing, a payload without text). */
  text: string | null;
  version: number | null;
}

export interface ChunkScanPage {
  chunks: StoredChunk[];
  /** The cursor of the next page (`after`), null after the last one. */
  nextCursor: string | null;
}

/** A split chunk whose whole text is asked for: its client chunk id and its number of windows. */
export interface ParentRef {
  chunkId: string;
  windows: number;
}

export interface DocumentDeletion {
  deleted: number;
  /** Chunk ids of the deleted points, at most MAX_LISTED_CHUNK_IDS of them. */
  chunkIds: string[];
}

/** Chunk ids a document deletion lists (the count is always exact). */
export const MAX_LISTED_CHUNK_IDS = 1000;

/**
 * - `written`: the chunk's fingerprint point now holds the write's version.
 * - `superseded`: it holds a newer version; nothing of this write remains.
 * - `changed`: its content hash differs from the touch's, or it is gone: plan the chunk again.
 */
export type ChunkWriteResult = "written" | "superseded" | "changed";

/**
 * Where vectors live. Every point carries the version it was written from and a write applies only
 * over an older one, so a worker that stalled past its lease can never put older content over newer,
 * and repeating a write after a crash changes nothing.
 */
export interface VectorStore {
  /**
   * Create the collection if missing; throw `dimension_mismatch` if it exists with another shape and
   * `model_mismatch` if it is bound to another profile than `spec.binding` (by fingerprint). An
   * existing collection without a binding takes `spec.binding` (marked adopted).
   */
  ensureCollection(spec: CollectionSpec): Promise<void>;
  /** The collection's shape and binding; null when it does not exist. */
  describeCollection(collection: string): Promise<CollectionDescription | null>;
  /**
   * Records `binding` on an existing collection that has none, atomically where the store can (a
   * collection already bound keeps its binding). Returns the binding in force afterwards, which the
   * caller compares with its own. `collection_not_found` if the collection does not exist.
   */
  adoptCollection(collection: string, binding: ModelBinding): Promise<ModelBinding>;
  /**
   * Points `alias` at `collection` in one atomic step, replacing whatever it pointed at: from then on
   * every call naming `alias` reaches `collection` (point ids stay derived from the name called with).
   * The cutover primitive of blue/green re-embedding. `collection_not_found` if `collection` does not
   * exist; `invalid_request` if `alias` is the name of a collection (as in Qdrant, which has no
   * rename: a name that is a collection must be freed before it can become an alias). A collection's
   * own name may point at its versions (`docs` → `docs__v2`, and back at `docs`, its version 1);
   * Qdrant refuses that for a collection created before versions with `version_migration_required`.
   * Other processes' caches keyed by the alias (admission's binding) are not told: whoever cuts over
   * must see to them.
   */
  setAlias(alias: string, collection: string): Promise<void>;
  /**
   * The collection `name` reaches (an alias's target, else `name`). With `scanChunks`, what
   * versioned collections (re-embedding) need; a store without them cannot re-embed yet.
   */
  resolveAlias?(name: string): Promise<string>;
  /**
   * The stored chunks of a collection, `limit` at most per page (bounded work per call), each once,
   * in an order of the store's (sqlite-vec: chunk id; Qdrant: point id); `after` is the previous
   * page's opaque `nextCursor`.
   */
  scanChunks?(collection: string, after: string | null, limit: number): Promise<ChunkScanPage>;
  /**
   * The versions of `logical` that exist (collection-versions.ts: `logical` itself, `logical__vN`),
   * by version, each described under its own name: aliases are not followed (after a cutover the
   * name `docs` reaches `docs__v2`, yet version 1 is still the collection `docs`). One catalog read
   * and one count per version: a collection has few.
   */
  listVersions?(logical: string): Promise<StoredVersion[]>;
  /**
   * Delete the collection `physical` (not followed through an alias) with all its points, in one
   * atomic step; returns how many points went. `version_active` when a name reaches it (an alias
   * points at it, or it is the version its logical name reaches), `collection_not_found` when it
   * does not exist. An alias named `physical` (version 1's name, pointing at a later version) stays.
   */
  deleteCollection?(physical: string): Promise<number>;
  /**
   * Refuses the whole call with `model_mismatch`, before writing anything, when the collection is
   * bound and a record carries another model fingerprint (or none): vectors of two profiles never mix.
   * Applies each chunk's write over older versions only (window points before the fingerprint
   * point, so a write that stops half way leaves the old fingerprint and the retry re-embeds), then
   * deletes every point of the chunk older than its fingerprint point: old windows beyond a new
   * count, and windows a stale writer inserted. Results in input order.
   */
  writeChunks(collection: string, writes: ChunkWrite[]): Promise<ChunkWriteResult[]>;
  /** Fingerprints of the points that exist among `ids` (missing ids are absent from the map). */
  fingerprints(collection: string, ids: string[]): Promise<Map<string, PointFingerprint>>;
  /**
   * Delete the points of a document older than `belowVersion` (and those without a version): all of
   * it for a delete, its old chunks after a replacement. Returns how many points, and the first
   * (up to 1,000) of their chunk ids.
   */
  deleteDocument(collection: string, documentId: string, belowVersion: number): Promise<DocumentDeletion>;
  /**
   * Delete the points these chunks have at exactly these versions: a write that landed after its
   * document was replaced or deleted. Returns how many points were deleted.
   */
  deleteChunkVersions(
    collection: string,
    chunks: ReadonlyArray<{ chunkId: string; version: number }>,
  ): Promise<number>;
  search(collection: string, vector: Float32Array, topK: number, filter?: SearchFilter): Promise<SearchHit[]>;
  /**
   * The whole text of split chunks, put back together from their windows' texts (window-text.ts): it
   * is stored nowhere else. A chunk whose windows are not all there (deleted, or being rewritten) is
   * absent from the map.
   */
  parentTexts(collection: string, parents: ParentRef[]): Promise<Map<string, string>>;
  count(collection: string): Promise<number>;
  /** Resolves when the store answers at all (readiness probes); throws what any call would throw. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
