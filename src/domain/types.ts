/**
 * Core domain types: every other layer speaks in these terms. Imports nothing outside domain/.
 */
import type { JobCounts } from "./job-counts.js";

/** JSON value as stored in payloads. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type Payload = { [key: string]: JsonValue };

/** The side of retrieval a text is embedded for; decides the model prefix (e5: "passage: " / "query: "). */
export type EmbedKind = "passage" | "query";

/**
 * What to do with a text longer than the model's limit (prefix and special tokens count):
 * split it into overlapping token windows (one point each), truncate it (recording the dropped
 * tokens), reject the request at admission, or pool: embed every window and store one point whose
 * vector is the normalised mean of the windows' vectors.
 */
export type OverflowPolicy = "split" | "truncate" | "reject" | "pool";
/** The policies a queued chunk can carry: "reject" is settled at admission. */
export type QueuedOverflowPolicy = Exclude<OverflowPolicy, "reject">;
/** What an embedder does with a text over the limit: a pooled text is split, then averaged by its caller. */
export type EmbedOverflowPolicy = Exclude<QueuedOverflowPolicy, "pool">;

export interface OverflowSpec {
  policy: QueuedOverflowPolicy;
  /** Tokens shared by consecutive windows when splitting (or pooling). */
  overlapTokens: number;
}

/** An OverflowSpec as an embedder takes it. */
export interface EmbedOverflow {
  policy: EmbedOverflowPolicy;
  overlapTokens: number;
}

/** A chunk as accepted from a client, normalised from either the seed or the native API. */
export interface NewChunk {
  /** The client's id for the chunk; the point id is derived from (collection, chunkId). */
  chunkId: string;
  /** Text to embed, before any model prefix. */
  text: string;
  /** Document the chunk belongs to, used by delete-by-document and filters. */
  documentId: string | null;
  /** Payload stored next to the vector, exactly as the client will read it back. */
  payload: Payload;
  /** Cheap estimate of the model tokens, used to size reservations. */
  estimatedTokens: number;
  overflow: OverflowSpec;
}

/**
 * Lifecycle of one accepted chunk. A dead letter is replayed (back to queued) or discarded.
 * `superseded`: a newer version of the same chunk id was stored first, so this one was not written.
 * `cancelled`: its job was cancelled (or its document deleted) before it ran.
 */
export type ChunkState =
  | "queued"
  | "running"
  | "stored"
  | "unchanged"
  | "superseded"
  | "dead"
  | "discarded"
  | "cancelled";

/** States a receipt shows: "failed" is a queued chunk whose last attempt failed and will be retried. */
export type ReceiptState = ChunkState | "failed";

/** What happened to one chunk of a job. */
export interface ChunkReceipt {
  /** Queue sequence number: stable id of this chunk within the queue (also the dead-letter id). */
  seq: number;
  chunkId: string;
  state: ReceiptState;
  attempts: number;
  /** Model tokens embedded (prefix and special tokens included); null until embedded. */
  tokens: number | null;
  /** Tokens dropped by the truncate policy; 0 when nothing was dropped. */
  truncatedTokens: number;
  /**
   * Windows embedded: 1, the number of points of a split chunk, or the windows a pooled chunk's one
   * point averages; null until stored.
   */
  windows: number | null;
  overflow: QueuedOverflowPolicy;
  model: string | null;
  profile: string | null;
  lastError: string | null;
  updatedAt: string;
}

export interface DeadLetter {
  seq: number;
  jobId: string;
  collection: string;
  chunkId: string;
  reason: string;
  attempts: number;
  deadAt: string;
}

/** A chunk in the queue, as handed to the pipeline by a reservation. */
export interface QueuedChunk extends NewChunk {
  /** Queue-internal sequence number, unique per queue. */
  seq: number;
  /**
   * Version of this chunk id's content: grows with each accepted version of a chunk (any
   * monotonic counter of the queue will do). A store write applies only over an older version, so a
   * stale worker finishing late can never put older content over newer.
   */
  version: number;
  jobId: string;
  collection: string;
  /** How many processing attempts have already failed. */
  attempts: number;
}

export type JobState = "queued" | "running" | "done";

/** Chunks of a job per receipt state; written once, as the API's schema, in job-counts.ts. */
export type { JobCounts } from "./job-counts.js";

export interface ChunkFailure {
  chunkId: string;
  state: "dead";
  reason: string;
  attempts: number;
}

/**
 * A job that replaces whole documents: once all its chunks are done, the documents' points older
 * than the job are deleted (chunks no longer in them, windows no longer needed).
 */
export interface DocumentReplacement {
  documents: string[];
  /** Whether the old points were cleaned up yet (the job is done and the cleanup ran). */
  finalized: boolean;
  /** Points deleted by the cleanup, and the first of their chunk ids. */
  deletedPoints: number;
  deletedChunkIds: string[];
}

export interface Job {
  id: string;
  collection: string;
  state: JobState;
  counts: JobCounts;
  createdAt: string;
  updatedAt: string;
  failures: ChunkFailure[];
  /** Set for a job that replaces documents (PUT .../documents/{id}, or replace_documents=true). */
  replace: DocumentReplacement | null;
}

/**
 * The version below which chunks of a document must not be (or stay) stored: a replacement's first
 * version (its older chunks are superseded), or the version of a delete (they are cancelled).
 * Floors only grow.
 */
export interface DocumentFloor {
  version: number;
  kind: "replace" | "delete";
}

export type Distance = "Cosine" | "Euclid" | "Dot";

/** A vector with its payload, ready for a store. */
export interface VectorRecord {
  /** Deterministic point id: UUIDv5 of (collection, chunkId) (window 0), or of (collection, chunkId#i). */
  id: string;
  /** The client's chunk id; for a window of a split chunk, `${parent}#${index}`. */
  chunkId: string;
  /** For a window of a split chunk: the client's chunk id; otherwise null. */
  parentChunkId: string | null;
  /**
   * Position of a window in its split chunk (0..n-1); null for an unsplit chunk. Window 0 keeps the
   * chunk's own point id and, like an unsplit chunk's one point, carries the chunk's fingerprint.
   */
  windowIndex: number | null;
  /** The queued chunk's version this point was written from: a write applies only over an older one. */
  version: number;
  documentId: string | null;
  vector: Float32Array;
  payload: Payload;
  /** sha256 over model, prefix and text: equal hash means the vector would be the same. */
  contentHash: string;
  /** sha256 over the canonical payload. */
  payloadHash: string;
  /** A window of a split chunk: where its text (payload `window_text`) sits in the chunk's text. */
  window?: WindowPlacement;
  /** The fingerprint of the embedding profile that made the vector (domain/model-binding.ts). */
  modelFingerprint?: string;
}

/**
 * A split chunk's text is stored once, in its windows' `window_text`: their placements (and, on window
 * 0, what no window covers) give the chunk's text back without a copy of it.
 */
export interface WindowPlacement {
  /** Offset of the window's text in the chunk's text, in UTF-16 code units. */
  start: number;
  /** Window 0 only: the chunk text's length and the text no window covers, as [offset, text] pairs. */
  parent?: ParentLayout;
}

export interface ParentLayout {
  length: number;
  /** Whitespace between windows that do not overlap, before the first and after the last. */
  gaps: Array<[number, string]>;
}

/** What a store remembers about a point, enough to skip re-embedding unchanged chunks. */
export interface PointFingerprint {
  contentHash: string;
  payloadHash: string;
  /** Version the point was written from; null for a point written before versions existed. */
  version: number | null;
  /** The embedding profile's fingerprint; absent on points written before points carried one. */
  modelFingerprint?: string;
}

/**
 * Equality filter on payload fields, AND across keys. A key is a payload field path with dots
 * ("meta.lang"); a value matches exactly, an array matches any of its values.
 */
export type SearchFilter = Record<string, string | number | boolean | Array<string | number | boolean>>;

export interface SearchHit {
  id: string;
  chunkId: string;
  score: number;
  payload: Payload;
}

export interface ModelInfo {
  /** Hugging Face id or local directory the model was loaded from. */
  id: string;
  /** The Hugging Face id of the weights: the hub id, or a local export's config `_name_or_path`. */
  hubId?: string;
  /** The name OpenAI clients use (SERVED_MODEL_NAME); unset = derived from the id (server/model-names.ts). */
  servedName?: string;
  profile: string;
  dimension: number;
  maxTokens: number;
  pooling: "mean" | "cls";
  normalize: boolean;
  prefixes: { passage: string; query: string };
  dtype: string;
  /** sha256 of the ONNX weights file the vectors come from; absent when not known (a remote engine). */
  weightsSha256?: string;
  /** How the profile was recognised: by a name, by the model's shape, or not at all (the default). */
  profileSource?: { by: "name" | "architecture" | "default"; detail: string };
  /** Set when a remote engine makes the vectors (EMBEDDER=remote); absent for the local model. */
  remote?: RemoteModelInfo;
}

export interface RemoteModelInfo {
  protocol: "openai" | "tei";
  /** The engine's base URL, without credentials. */
  url: string;
  /** The model as the engine names it. */
  model: string;
  /** tokenizer: the model's own tokenizer counts; estimate: a conservative count against a declared limit. */
  tokenCounter: "tokenizer" | "estimate";
}
