import { AppError } from "../../domain/errors.js";
import type {
  JsonValue,
  Payload,
  PointFingerprint,
  VectorRecord,
  WindowPlacement,
} from "../../domain/types.js";

/** Reserved top-level payload key holding the server's own fields next to the user's payload. */
export const RAG_KEY = "_rag";

/** Where a point's version lives: an integer, absent on points written before versions existed. */
export const VERSION_KEY = `${RAG_KEY}.version`;

/**
 * Payload indexes created with each collection: the fields writes and deletes filter on, and
 * `parent_chunk_id`, the payload field clients filter on to find the windows of a split chunk
 * (Qdrant's strict mode refuses filters on unindexed fields, and without an index such a filter
 * scans the collection).
 */
export const PAYLOAD_INDEXES: ReadonlyArray<{ field: string; schema: "keyword" | "integer" }> = [
  { field: `${RAG_KEY}.document_id`, schema: "keyword" },
  { field: `${RAG_KEY}.group_id`, schema: "keyword" },
  { field: `${RAG_KEY}.chunk_id`, schema: "keyword" },
  { field: `${RAG_KEY}.content_hash`, schema: "keyword" },
  { field: VERSION_KEY, schema: "integer" },
  { field: "parent_chunk_id", schema: "keyword" },
];

/** What `_rag` holds. Snake case like Qdrant's own fields, readable by any Qdrant client. */
export interface RagFields {
  chunk_id: string;
  /** The client's chunk id for a whole chunk and for every window of a split one. */
  group_id: string;
  document_id: string | null;
  content_hash: string;
  payload_hash: string;
  /** The queued chunk's version the point was written from. */
  version: number;
  /** A window of a split chunk: where its text sits in the chunk's text (see window-text.ts). */
  window?: WindowPlacement;
  /** The fingerprint of the embedding profile that made the vector (the collection's binding's). */
  model_fingerprint?: string;
}

export function ragFieldsOf(record: VectorRecord): RagFields {
  return {
    chunk_id: record.chunkId,
    group_id: record.parentChunkId ?? record.chunkId,
    document_id: record.documentId,
    content_hash: record.contentHash,
    payload_hash: record.payloadHash,
    version: record.version,
    ...(record.window === undefined ? {} : { window: record.window }),
    ...(record.modelFingerprint === undefined ? {} : { model_fingerprint: record.modelFingerprint }),
  };
}

/** The stored payload: the user's payload as is, plus `_rag`. A user key named `_rag` is refused. */
export function storedPayload(payload: Payload, rag: RagFields): Payload {
  if (Object.hasOwn(payload, RAG_KEY)) {
    throw new AppError(
      "invalid_request",
      `Payload key "${RAG_KEY}" is reserved for the server's own fields in Qdrant; rename it`,
      { details: { key: RAG_KEY, chunkId: rag.chunk_id } },
    );
  }
  return { ...payload, [RAG_KEY]: rag as unknown as JsonValue };
}

/** Splits a stored payload back into the user's payload and `_rag` (undefined for foreign points). */
export function splitPayload(stored: Record<string, unknown> | null | undefined): {
  payload: Payload;
  rag: Partial<RagFields> | undefined;
} {
  const { [RAG_KEY]: rag, ...rest } = stored ?? {};
  return {
    payload: rest as Payload,
    rag: typeof rag === "object" && rag !== null ? (rag as Partial<RagFields>) : undefined,
  };
}

export function fingerprintOf(rag: Partial<RagFields> | undefined): PointFingerprint | undefined {
  if (rag === undefined || typeof rag.content_hash !== "string" || typeof rag.payload_hash !== "string") {
    return undefined;
  }
  return {
    contentHash: rag.content_hash,
    payloadHash: rag.payload_hash,
    version: typeof rag.version === "number" ? rag.version : null,
    ...(typeof rag.model_fingerprint === "string" ? { modelFingerprint: rag.model_fingerprint } : {}),
  };
}
