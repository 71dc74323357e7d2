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
}

/**
 * Where vectors live. Upserts are idempotent by point id, so repeating one after a crash leaves
 * exactly one point per chunk.
 */
export interface VectorStore {
  /** Create the collection if missing; throw `dimension_mismatch` if it exists with another shape. */
  ensureCollection(spec: CollectionSpec): Promise<void>;
  upsert(collection: string, records: VectorRecord[]): Promise<void>;
  /** Replace payloads of existing points without touching their vectors. */
  updatePayloads(
    collection: string,
    updates: Array<{ id: string; payload: Payload; payloadHash: string; documentId: string | null }>,
  ): Promise<void>;
  /** Fingerprints of the points that exist among `ids` (missing ids are absent from the map). */
  fingerprints(collection: string, ids: string[]): Promise<Map<string, PointFingerprint>>;
  /**
   * Delete the points of these chunks (as chunk or as parent of windows) whose ids are not in
   * `keepIds`: after re-ingesting a chunk, its old windows must not linger. Returns how many.
   */
  deleteChunkRemnants(collection: string, chunkIds: string[], keepIds: string[]): Promise<number>;
  /** Delete every point of a document; returns how many were deleted. */
  deleteByDocument(collection: string, documentId: string): Promise<number>;
  search(collection: string, vector: Float32Array, topK: number, filter?: SearchFilter): Promise<SearchHit[]>;
  count(collection: string): Promise<number>;
  close(): Promise<void>;
}
