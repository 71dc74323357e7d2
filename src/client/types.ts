/**
 * Request and response types of the HTTP API. Request bodies are derived from the server's own
 * TypeBox schemas (type-only imports: nothing of the server is loaded at run time); responses are
 * declared here to match the route handlers in src/server/routes/.
 */
import type { ErrorCode } from "../domain/errors.js";
import type {
  DeadLetterSelectorBody,
  NativeChunk,
  NativeIngestBody,
  SearchBody,
  SeedChunk,
} from "../server/schemas.js";

export type { DeadLetterSelectorBody, NativeChunk, NativeIngestBody, SearchBody, SeedChunk };

/** A chunk for `ingest`: `{id, text, document_id?, metadata?}`. */
export type Chunk = NativeChunk;
export type OverflowPolicy = NonNullable<NativeIngestBody["overflow"]>;
export type SearchFilter = NonNullable<SearchBody["filter"]>;
export type DeadLetterSelector = DeadLetterSelectorBody;
export type { ErrorCode };

export interface ErrorBody {
  error: { code: ErrorCode | string; message: string; details?: Record<string, unknown> };
}

/** 202 of POST /v1/collections/{collection}/chunks */
export interface IngestAccepted {
  job_id: string;
  status: "accepted";
  count: number;
}

export type JobState = "queued" | "running" | "done";
export type ReceiptState =
  | "queued"
  | "running"
  | "stored"
  | "unchanged"
  | "superseded"
  | "failed"
  | "dead"
  | "discarded"
  | "cancelled";

export interface JobCounts {
  total: number;
  queued: number;
  running: number;
  stored: number;
  unchanged: number;
  /** A newer version of the same chunk id was stored first; this one was not written. */
  superseded: number;
  /** The last attempt failed; a retry is scheduled. */
  failed: number;
  /** Dead letters: retries ran out (or the error was permanent). */
  dead: number;
  discarded: number;
  /** Cancelled before they ran. */
  cancelled: number;
}

export interface ChunkReceipt {
  id: number;
  chunk_id: string;
  state: ReceiptState;
  attempts: number;
  tokens: number | null;
  truncated: boolean;
  truncated_tokens: number;
  split: boolean;
  /** Points the chunk became: 1, or its windows when split. */
  windows: number | null;
  /** For a pooled chunk embedded by this job: how many windows its one vector averages. */
  pooled_windows: number | null;
  overflow: "split" | "truncate" | "pool";
  model: string | null;
  profile: string | null;
  last_error: string | null;
  updated_at: string;
}

/** GET /v1/jobs/{id} */
export interface Job {
  id: string;
  collection: string;
  state: JobState;
  counts: JobCounts;
  created_at: string;
  updated_at: string;
  failures: Array<{ chunk_id: string; state: "dead"; reason: string; attempts: number }>;
  chunks: ChunkReceipt[];
  next_cursor: number | null;
  /** Set for a job that replaces documents: their old points are deleted once it is done. */
  replace: {
    documents: string[];
    finalized: boolean;
    deleted_points: number;
    deleted_chunk_ids: string[];
  } | null;
}

export interface JobQueryOptions {
  state?: ReceiptState;
  after?: number;
  limit?: number;
}

/** GET /v1/status */
export interface ServerStatus {
  queue: {
    pending_chunks: number;
    running_chunks: number;
    pending_tokens_estimate: number;
    max_queue_size: number;
    available: boolean;
  };
  dead_letters: number;
  throughput: { chunks_per_second: number; tokens_per_second: number };
  estimated_drain_seconds: number | null;
  /** `id`: where the weights were loaded from; `name`: what OpenAI clients call it (GET /v1/models). */
  model: { id: string; name: string; dimension: number; ready: true } | { ready: false };
  /** Whether the queue's engine keeps what it accepted (Redis settings checked at start-up). */
  durability: {
    queue: "sqlite" | "redis";
    verified: boolean;
    severity: "ok" | "warning" | "error";
    problems: string[];
    /** Redis only: where the settings were read (CONFIG GET, INFO, or nowhere). */
    source?: "config" | "info" | "none";
    maxmemory_policy?: string | null;
    appendonly?: string | null;
    appendfsync?: string | null;
    checked_at?: string;
  };
}

/** GET /test/status (seed API) */
export interface SeedStatus {
  current_task_queue_size: number;
  max_queue_size: number;
  queue_available: boolean;
  threshold_ratio: number;
}

export interface SearchHit {
  id: string;
  point_id: string;
  score: number;
  payload: Record<string, unknown>;
}

/** POST /v1/collections/{collection}/search */
export interface SearchResult {
  hits: SearchHit[];
}

export interface DeadLetter {
  id: number;
  job_id: string;
  collection: string;
  chunk_id: string;
  reason: string;
  attempts: number;
  dead_at: string;
}

/** GET /v1/dead-letters */
export interface DeadLetterPage {
  dead_letters: DeadLetter[];
  next_cursor: number | null;
}

export interface DeadLetterQueryOptions {
  job_id?: string;
  after?: number;
  limit?: number;
}

/** GET /v1/models (OpenAI-compatible): the served model under its served name. */
export interface ModelList {
  object: "list";
  data: Array<{ id: string; object: "model"; created: number; owned_by: string }>;
}

/** POST /v1/embeddings (OpenAI-compatible), float encoding. */
export interface EmbeddingsResult {
  object: "list";
  data: Array<{ object: "embedding"; index: number; embedding: number[] }>;
  /** The served name. */
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}
