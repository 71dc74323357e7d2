/**
 * Chunk writes as Qdrant requests: a record as a versioned point, a touch as batch_update operations
 * (each with its estimated JSON size, so requests can be packed under Qdrant's size limit).
 */
import type { Schemas } from "@qdrant/js-client-rest";
import type { Payload, VectorRecord } from "../../domain/types.js";
import type { TouchWrite } from "../vector-store.js";
import { RAG_KEY, type RagFields, ragFieldsOf, storedPayload } from "./qdrant-payload.js";
import { touchable } from "./version-filters.js";

/** A point as sent, with the version its upsert's `update_filter` checks against. */
export interface VersionedPoint {
  id: string;
  version: number;
  vector: number[];
  payload: Payload;
}

/** A batch_update operation with its estimated JSON size. */
export interface SizedOperation {
  op: Schemas["UpdateOperation"];
  bytes: number;
}

export function versionedPoint(record: VectorRecord): VersionedPoint {
  return {
    id: record.id,
    version: record.version,
    vector: Array.from(record.vector),
    payload: storedPayload(record.payload, ragFieldsOf(record)),
  };
}

/**
 * A touch as batch_update operations, in this order: the new payload of an unsplit chunk's point
 * (with the version, under the same checks), then the version of every point of the chunk. The
 * other order would bump the point's version first and fail the payload's own version check.
 */
export function touchOperations(pointId: string, write: TouchWrite): SizedOperation[] {
  const operations: SizedOperation[] = [];
  const where = touchable(write.chunkId, write.contentHash, write.version);
  if (write.payload !== null) {
    const rag: RagFields = {
      chunk_id: write.chunkId,
      group_id: write.chunkId,
      document_id: write.payload.documentId,
      content_hash: write.contentHash,
      payload_hash: write.payload.payloadHash,
      version: write.version,
    };
    const payload = storedPayload(write.payload.payload, rag);
    operations.push({
      op: { overwrite_payload: { payload, filter: { must: [{ has_id: [pointId] }, ...where] } } },
      bytes: Buffer.byteLength(JSON.stringify(payload)) + 512,
    });
  }
  // `key` sets `version` inside `_rag` and leaves the other fields of `_rag` as they are.
  operations.push({
    op: { set_payload: { payload: { version: write.version }, key: RAG_KEY, filter: { must: where } } },
    bytes: 512,
  });
  return operations;
}
