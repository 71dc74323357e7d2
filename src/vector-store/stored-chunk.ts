import { CHUNK_TEXT_FIELDS, WINDOW_TEXT_FIELD } from "../domain/payload-fields.js";
import type { Payload } from "../domain/types.js";
import type { StoredChunk } from "./vector-store.js";

/** Payload fields a split chunk's windows add; the chunk as the client sent it had none of them. */
const WINDOW_FIELDS = ["parent_chunk_id", "window_index", "window_count", WINDOW_TEXT_FIELD];

/**
 * A chunk as the client sent it, from its fingerprint point: an unsplit chunk's text is in its
 * payload (`text` or `contents`); a split chunk's is `parentText` (its windows put back together),
 * restored under `text` since its windows' payloads leave the whole text out.
 */
export function chunkFromPoint(
  point: { chunkId: string; documentId: string | null; payload: Payload; version: number | null },
  parentText: string | undefined,
): StoredChunk {
  const split = typeof point.payload.window_count === "number";
  const payload: Payload = {};
  for (const [key, value] of Object.entries(point.payload)) {
    if (!split || !WINDOW_FIELDS.includes(key)) payload[key] = value;
  }
  let text: string | null = null;
  if (split) {
    if (parentText !== undefined) {
      text = parentText;
      payload.text = parentText;
    }
  } else {
    for (const field of CHUNK_TEXT_FIELDS) {
      const value = payload[field];
      if (typeof value === "string") {
        text = value;
        break;
      }
    }
  }
  return { chunkId: point.chunkId, documentId: point.documentId, payload, text, version: point.version };
}
