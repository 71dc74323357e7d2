import { canonicalJson, contentHash, pointId, sha256, windowPointId } from "../domain/ids.js";
import { modelFingerprint } from "../domain/model-binding.js";
import { CHUNK_TEXT_FIELDS, WINDOW_TEXT_FIELD } from "../domain/payload-fields.js";
import type {
  DocumentFloor,
  ModelInfo,
  Payload,
  PointFingerprint,
  QueuedChunk,
  VectorRecord,
} from "../domain/types.js";
import type { EmbeddedWindow } from "../embedder/embedder.js";
import { normalizedMean } from "../embedder/pooling.js";
import type { ChunkOutcome } from "../queue/job-queue.js";
import type { ChunkWrite, PayloadChange } from "../vector-store/vector-store.js";
import { locateWindows, parentLayout } from "../vector-store/window-text.js";

/** One reserved chunk, ready to commit: what to write, and what to acknowledge once it is written. */
export interface PlannedChunk {
  seq: number;
  collection: string;
  /** The chunk's document, whose floor a committer checks again around the write. */
  documentId: string | null;
  /** Null when nothing is to be written (a newer version is known already). */
  write: ChunkWrite | null;
  /** Acknowledged when the write is `written` (or when there is none). */
  outcome: ChunkOutcome;
}

/** A chunk that must be embedded; `embeddedChunk` turns it into a PlannedChunk once it is. */
export interface EmbedPlan {
  chunk: QueuedChunk;
  /** Its content hash if the embedder does not cut it into windows, and if it does (chunkContentHash). */
  contentHashes: Record<EmbeddedForm, string>;
  payloadHash: string;
}

export interface Plan {
  /** Chunks settled without embedding: superseded, unchanged, or only their payload changed. */
  ready: PlannedChunk[];
  toEmbed: EmbedPlan[];
}

/** What the embedder made of one chunk. */
export interface EmbeddedChunk {
  vector: Float32Array;
  tokens: number;
  truncatedTokens: number;
  /** Its windows when the split (or pool) policy cut it into two or more, else null. */
  windows: EmbeddedWindow[] | null;
}

/**
 * Decides per chunk, from the fingerprint stored at its point id (keyed by point id in `stored`) and
 * the floor of its document (keyed by document id in `floors`):
 * - older than its document's floor → superseded (the document was replaced) or cancelled (it was
 *   deleted), without embedding;
 * - a newer version stored, or a newer version of the same chunk in this reservation → superseded,
 *   without embedding;
 * - same content and payload, version older → touch (the points move to this version): unchanged;
 * - same content, other payload, an unsplit chunk → touch with the payload: stored, 0 tokens;
 * - anything else → embed. That includes a stored version equal to the chunk's (written, then the
 *   process died before the ack): the write is then skipped by the version rule and reads `written`.
 * Pure: no store, no model; the caller fetches `stored` and embeds `toEmbed`.
 */
export function planChunks(
  chunks: readonly QueuedChunk[],
  model: ModelInfo,
  stored: ReadonlyMap<string, PointFingerprint>,
  floors: ReadonlyMap<string, DocumentFloor> = new Map(),
): Plan {
  const newest = newestVersions(chunks);
  const ready: PlannedChunk[] = [];
  const toEmbed: EmbedPlan[] = [];
  const ids = { model: model.id, profile: model.profile };
  for (const chunk of chunks) {
    const superseded: PlannedChunk = {
      seq: chunk.seq,
      collection: chunk.collection,
      documentId: chunk.documentId,
      write: null,
      outcome: { seq: chunk.seq, state: "superseded", ...ids },
    };
    const floor = chunk.documentId === null ? undefined : floors.get(chunk.documentId);
    if (floor !== undefined && chunk.version < floor.version) {
      ready.push({ ...superseded, outcome: { seq: chunk.seq, state: floorOutcome(floor), ...ids } });
      continue;
    }
    if ((newest.get(groupKey(chunk)) ?? chunk.version) > chunk.version) {
      ready.push(superseded);
      continue;
    }
    const known = stored.get(pointId(chunk.collection, chunk.chunkId));
    const plan: EmbedPlan = {
      chunk,
      contentHashes: {
        whole: chunkContentHash(chunk, model, "whole"),
        windows: chunkContentHash(chunk, model, "windows"),
      },
      payloadHash: sha256(canonicalJson(chunk.payload)),
    };
    if (known?.version != null && known.version > chunk.version) {
      ready.push(superseded);
      continue;
    }
    // Either form matches: the text and the model are the same, so the embedder would cut it (or not)
    // as it did. The windows form is also what every point stored before the forms existed carries.
    const olderSameContent =
      known !== undefined &&
      (known.contentHash === plan.contentHashes.whole || known.contentHash === plan.contentHashes.windows) &&
      (known.version === null || known.version < chunk.version);
    if (olderSameContent && known.payloadHash === plan.payloadHash) {
      ready.push({
        seq: chunk.seq,
        collection: chunk.collection,
        documentId: chunk.documentId,
        write: touch(chunk, known.contentHash, null),
        outcome: { seq: chunk.seq, state: "unchanged", ...ids },
      });
    } else if (olderSameContent && chunk.overflow.policy !== "split") {
      // A split chunk's windows each carry the payload, so only an unsplit one is rewritten in place.
      ready.push({
        seq: chunk.seq,
        collection: chunk.collection,
        documentId: chunk.documentId,
        write: touch(chunk, known.contentHash, {
          payload: chunk.payload,
          payloadHash: plan.payloadHash,
          documentId: chunk.documentId,
        }),
        outcome: { seq: chunk.seq, state: "stored", tokens: 0, truncatedTokens: 0, windows: 1, ...ids },
      });
    } else {
      toEmbed.push(plan);
    }
  }
  return { ready, toEmbed };
}

/** The points an embedded chunk becomes, as a PlannedChunk; also the tokens its windows embedded. */
export function embeddedChunk(
  plan: EmbedPlan,
  embedded: EmbeddedChunk,
  model: ModelInfo,
): { planned: PlannedChunk; tokens: number } {
  const { chunk } = plan;
  const records = pointRecords(plan, embedded, modelFingerprint(model));
  return {
    planned: {
      seq: chunk.seq,
      collection: chunk.collection,
      documentId: chunk.documentId,
      write: { kind: "points", chunkId: chunk.chunkId, version: chunk.version, records },
      outcome: {
        seq: chunk.seq,
        state: "stored",
        tokens: embedded.tokens,
        truncatedTokens: embedded.truncatedTokens,
        windows: embedded.windows?.length ?? 1,
        model: model.id,
        profile: model.profile,
      },
    },
    tokens: embedded.windows ? embedded.windows.reduce((sum, w) => sum + w.tokens, 0) : embedded.tokens,
  };
}

/** How the embedder took a chunk: whole (fitted, or truncated) or cut into windows (split, pool). */
export type EmbeddedForm = "whole" | "windows";

/**
 * Everything that shapes a chunk's points: model, prefix, token limit, dtype, pooling, normalisation,
 * overflow policy, the text, and for a chunk cut into windows the overlap between them. The same hash
 * means the same vectors. The overlap shapes only windows, so a chunk embedded whole does not hash it:
 * changing SPLIT_OVERLAP_TOKENS re-embeds only the chunks that were split. The windows form is the
 * hash every point carried before the forms existed.
 */
export function chunkContentHash(chunk: QueuedChunk, model: ModelInfo, form: EmbeddedForm): string {
  const shape = [
    model.prefixes.passage,
    model.maxTokens,
    model.dtype,
    model.pooling,
    model.normalize ? "normalized" : "raw",
    chunk.overflow.policy,
    form === "windows" ? chunk.overflow.overlapTokens : "whole",
  ].join("\u0000");
  return contentHash(model.id, shape, chunk.text);
}

function touch(chunk: QueuedChunk, contentHash: string, payload: PayloadChange | null): ChunkWrite {
  return { kind: "touch", chunkId: chunk.chunkId, version: chunk.version, contentHash, payload };
}

/**
 * One point; one per window of a split chunk; or, pooled, one point whose vector is the normalised mean
 * of its windows'. Window 0 keeps the chunk's own point id, so a chunk that stops (or starts) being
 * split reuses it; every window carries the parent id, its index and its own text, and leaves out the
 * payload fields holding the chunk's whole text: window 0 records how to put it back together.
 */
function pointRecords(plan: EmbedPlan, embedded: EmbeddedChunk, fingerprint: string): VectorRecord[] {
  const { chunk } = plan;
  const base = {
    modelFingerprint: fingerprint,
    id: pointId(chunk.collection, chunk.chunkId),
    chunkId: chunk.chunkId,
    parentChunkId: null,
    windowIndex: null,
    version: chunk.version,
    documentId: chunk.documentId,
    payload: chunk.payload,
    contentHash: plan.contentHashes[embedded.windows ? "windows" : "whole"],
    payloadHash: plan.payloadHash,
  };
  const windows = embedded.windows;
  if (!windows) return [{ ...base, vector: embedded.vector }];
  if (chunk.overflow.policy === "pool") {
    return [{ ...base, vector: normalizedMean(windows.map((w) => w.vector)) }];
  }
  const starts = locateWindows(
    chunk.text,
    windows.map((w) => w.text),
  );
  const placed = windows.map((w, index) => ({ start: starts[index] ?? 0, text: w.text }));
  const layout = parentLayout(chunk.text, placed);
  const shared = withoutChunkText(chunk.payload, chunk.text);
  return windows.map((window, index) => ({
    ...base,
    id: index === 0 ? base.id : windowPointId(chunk.collection, chunk.chunkId, index),
    chunkId: `${chunk.chunkId}#${index}`,
    parentChunkId: chunk.chunkId,
    windowIndex: index,
    vector: window.vector,
    payload: {
      ...shared,
      parent_chunk_id: chunk.chunkId,
      window_index: index,
      window_count: windows.length,
      [WINDOW_TEXT_FIELD]: window.text,
    },
    window:
      index === 0 ? { start: placed[0]?.start ?? 0, parent: layout } : { start: placed[index]?.start ?? 0 },
  }));
}

/** The payload without the fields that hold the chunk's text (or, seed chunks, the part after the name). */
function withoutChunkText(payload: Payload, text: string): Payload {
  const kept: Payload = {};
  for (const [key, value] of Object.entries(payload)) {
    if (CHUNK_TEXT_FIELDS.includes(key) && typeof value === "string" && text.includes(value)) continue;
    kept[key] = value;
  }
  return kept;
}

/** What a chunk below its document's floor becomes: a replaced document's, superseded; a deleted one's, cancelled. */
export function floorOutcome(floor: DocumentFloor): "superseded" | "cancelled" {
  return floor.kind === "delete" ? "cancelled" : "superseded";
}

function groupKey(chunk: QueuedChunk): string {
  return `${chunk.collection}\u0000${chunk.chunkId}`;
}

/** The newest version of each chunk id among these chunks. */
function newestVersions(chunks: readonly QueuedChunk[]): Map<string, number> {
  const newest = new Map<string, number>();
  for (const chunk of chunks) {
    const key = groupKey(chunk);
    newest.set(key, Math.max(newest.get(key) ?? chunk.version, chunk.version));
  }
  return newest;
}
