import type { Chunk } from "../client/types.js";

export interface FieldMapping {
  idField: string;
  textField: string;
  documentField?: string | undefined;
  /** Put the other fields in `metadata` (default true). */
  metadata?: boolean;
}

export type RecordResult =
  | { ok: true; chunk: Chunk }
  | { ok: false; reason: "empty_text" | "invalid"; message: string };

/**
 * One input record → one chunk: `id` and `text` from the named fields, the document from
 * `documentField` when given, and every other field as metadata. Pure, for unit tests.
 */
export function recordToChunk(record: Record<string, unknown>, mapping: FieldMapping): RecordResult {
  const id = record[mapping.idField];
  let chunkId: string | number;
  if (typeof id === "string" && id.length > 0) chunkId = id;
  else if (typeof id === "number" && Number.isInteger(id) && id >= 0) chunkId = id;
  else if (typeof id === "number" && Number.isFinite(id)) chunkId = String(id);
  else
    return {
      ok: false,
      reason: "invalid",
      message: `field '${mapping.idField}' (the id) is missing or empty`,
    };
  const text = record[mapping.textField];
  if (typeof text !== "string") {
    return {
      ok: false,
      reason: "invalid",
      message: `field '${mapping.textField}' (the text) is missing or not a string`,
    };
  }
  if (text.trim() === "") return { ok: false, reason: "empty_text", message: `chunk ${chunkId} has no text` };
  const chunk: Chunk = { id: chunkId, text };
  const used = new Set([mapping.idField, mapping.textField]);
  if (mapping.documentField !== undefined) {
    used.add(mapping.documentField);
    const documentId = record[mapping.documentField];
    if (typeof documentId === "string" || (typeof documentId === "number" && Number.isInteger(documentId))) {
      chunk.document_id = documentId === "" ? null : documentId;
    } else if (documentId !== undefined && documentId !== null) {
      chunk.document_id = JSON.stringify(documentId);
    }
  }
  if (mapping.metadata !== false) {
    const rest = Object.entries(record).filter(([key]) => !used.has(key));
    if (rest.length > 0) chunk.metadata = Object.fromEntries(rest);
  }
  return { ok: true, chunk };
}
