import type {
  ChunkReceipt,
  DeadLetter,
  DocumentFloor,
  Job,
  JobState,
  NewChunk,
  QueuedChunk,
  ReceiptState,
} from "../domain/types.js";

export interface EnqueueRequest {
  /**
   * Chosen by the caller (a fresh id, or one derived from the client's Idempotency-Key); the queue
   * makes one up when absent. A job with this id that already exists is returned as it is
   * (`duplicate`) and nothing is added.
   */
  jobId?: string;
  collection: string;
  chunks: NewChunk[];
  /** Refuse the whole request when pending chunks + this request would exceed it. */
  maxQueueSize: number;
  /** Refuse the whole request when pending estimated tokens + this request's would exceed it (default: no bound). */
  maxQueueTokens?: number;
  /**
   * The request is the full chunk set of these documents (every chunk belongs to one of them): their
   * floor becomes the request's first version, so older chunks of them are superseded, and once the
   * job is done the documents' older points are deleted (see `pendingFinalizations`).
   */
  replaceDocuments?: string[];
  /**
   * Work no client waits for (a re-embed's copies): ranked behind live ingest with a fraction of
   * the fair share (fair-ranks.ts, BACKGROUND_SHARE_DIVISOR), so it never holds live chunks up much.
   */
  background?: boolean;
}

export type EnqueueResult =
  | { accepted: true; jobId: string; count: number; duplicate: boolean }
  | {
      accepted: false;
      reason: "queue_full";
      /** Which bound the request would cross. */
      limit: "chunks" | "tokens";
      pending: number;
      pendingTokens: number;
      maxQueueSize: number;
      maxQueueTokens: number;
    };

export interface ReserveRequest {
  /** Upper bound on chunks in the reservation. */
  maxChunks: number;
  /** Upper bound on the sum of estimated tokens (a single larger chunk is still returned alone). */
  maxTokens: number;
  /** How long the reservation is held before another worker may take it. */
  leaseMs: number;
}

/** Work handed to one worker; it must be acked, failed or released before the lease runs out. */
export interface Lease {
  id: string;
  chunks: QueuedChunk[];
  expiresAt: number;
}

export type ChunkOutcome =
  | {
      seq: number;
      state: "stored";
      tokens: number;
      truncatedTokens: number;
      /** Points written for the chunk (windows when split). */
      windows: number;
      model: string;
      profile: string;
    }
  | { seq: number; state: "unchanged"; model: string; profile: string }
  /** A newer version of the chunk (or of its document) is already accepted: nothing was written. */
  | { seq: number; state: "superseded"; model: string; profile: string }
  /** Its document was deleted after it was accepted: nothing was written. */
  | { seq: number; state: "cancelled"; model: string; profile: string };

export interface Page<T> {
  items: T[];
  /** Pass as `after` to get the next page; null on the last page. */
  nextCursor: number | null;
}

export interface PageRequest {
  /** Return items with seq greater than this (cursor from the previous page). */
  after?: number;
  limit: number;
}

/** A job without its failure list, as job listings show it. */
export type JobSummary = Omit<Job, "failures" | "replace">;

export interface JobListRequest {
  /** Only jobs in this state. */
  state?: JobState;
  collection?: string;
  /** `nextCursor` of the previous page. */
  cursor?: string;
  limit: number;
}

/**
 * A page of jobs: jobs with work left (queued, running) first, newest first, then finished ones,
 * newest first. The cursor is opaque.
 */
export interface JobPage {
  items: JobSummary[];
  nextCursor: string | null;
}

/** A page of a collection's document ids, in id order. */
export interface DocumentPage {
  documentIds: string[];
  /** Pass as `after` for the next page; null on the last. */
  nextCursor: string | null;
}

/** A finished document replacement whose old points are still to be deleted. */
export interface Finalization {
  jobId: string;
  collection: string;
  documents: string[];
  /** The job's first version: the documents' points older than this are the old ones. */
  version: number;
}

/** Which dead letters an operation applies to. */
export type DeadLetterSelector = { all: true } | { jobId: string } | { seqs: number[] };

export interface FailRequest {
  seqs: number[];
  error: string;
  /** Retry at now + delay; attempts is incremented. */
  retryDelayMs: number;
  /** With this many failed attempts (after incrementing), the chunk becomes a dead letter instead. */
  maxAttempts: number;
}

export interface QueueStats {
  /** Chunks accepted and not yet in a terminal state (queued + running). */
  pending: number;
  running: number;
  dead: number;
  pendingTokens: number;
}

export interface JobQueueOptions {
  /**
   * Times a chunk may be taken back from a worker that died or lost its lease (crash, OOM) before
   * it becomes a dead letter: a chunk that kills every worker must not loop forever unseen.
   */
  maxStalls: number;
  /** How long a finished job and its receipts are kept (JOB_RETENTION). */
  jobRetentionMs: number;
  /** How long a dead letter is kept before it is discarded as expired (DEAD_LETTER_RETENTION). */
  deadLetterRetentionMs: number;
}

/** What one `maintain()` pass removed. */
export interface MaintenanceResult {
  /** Finished jobs (with their receipts) past JOB_RETENTION. */
  expiredJobs: number;
  /** Dead letters past DEAD_LETTER_RETENTION, now discarded. */
  expiredDeadLetters: number;
}

/**
 * A durable queue of chunks. `enqueue` is atomic per request and durable before it resolves;
 * every reserved chunk ends acked, failed (retried or dead-lettered) or released. Operations that
 * take a lease id do nothing for chunks whose lease has passed to another worker.
 */
export interface JobQueue {
  enqueue(request: EnqueueRequest): Promise<EnqueueResult>;
  reserve(request: ReserveRequest): Promise<Lease | null>;
  /** Extend a lease that is still being worked on; false if it was lost. */
  renew(leaseId: string, leaseMs: number): Promise<boolean>;
  ack(leaseId: string, outcomes: ChunkOutcome[]): Promise<void>;
  fail(leaseId: string, request: FailRequest): Promise<void>;
  /** Hand reserved chunks back untouched (graceful shutdown): no attempt is counted. */
  release(leaseId: string): Promise<void>;
  getJob(jobId: string): Promise<Job | null>;
  /** Jobs on record (within JOB_RETENTION), work left first; bounded work per page. */
  listJobs(request: JobListRequest): Promise<JobPage>;
  /**
   * Cancel a job's chunks that have not started (queued, or waiting for a retry): their receipts
   * say `cancelled` and they never run. Running chunks finish. Returns how many were cancelled, or
   * null for an unknown job.
   */
  cancelJob(jobId: string): Promise<number | null>;
  /** The floors of these documents of a collection (documents without one are absent). */
  documentFloors(collection: string, documentIds: string[]): Promise<Map<string, DocumentFloor>>;
  /**
   * Raise a document's floor to a new version of kind "delete": every chunk of it accepted before
   * is cancelled if it has not run, and never stored if it is running. Returns the floor.
   */
  deleteDocument(collection: string, documentId: string): Promise<DocumentFloor>;
  /**
   * The documents of a collection: every document id a request carried, until the document is
   * deleted (for listings and `rag-embed sync --delete-missing`). Paged in id order.
   */
  listDocuments(collection: string, request: { after?: string; limit: number }): Promise<DocumentPage>;
  /**
   * Done replacement jobs whose old points are still to be deleted, oldest first. A job holding
   * dead letters waits until they are replayed (and stored) or discarded: its old points stay
   * meanwhile, so no chunk of the document is lost to a failure.
   */
  pendingFinalizations(limit: number): Promise<Finalization[]>;
  /** Record that a replacement's old points were deleted (idempotent). */
  completeFinalization(
    jobId: string,
    result: { deletedPoints: number; deletedChunkIds: string[] },
  ): Promise<void>;
  /** Per-chunk receipts of a job in seq order, optionally only those in one state. */
  listChunks(jobId: string, request: PageRequest & { state?: ReceiptState }): Promise<Page<ChunkReceipt>>;
  listDeadLetters(request: PageRequest & { jobId?: string }): Promise<Page<DeadLetter>>;
  /** Dead letters back to queued with attempts reset; returns how many. Ignores the size limit: they were accepted once. */
  replayDeadLetters(selector: DeadLetterSelector): Promise<number>;
  /** Dead letters marked discarded (kept as a record, never processed); returns how many. */
  discardDeadLetters(selector: DeadLetterSelector): Promise<number>;
  stats(): Promise<QueueStats>;
  /**
   * Chunks of one collection accepted and not finished yet (queued, waiting for a retry, running):
   * what a search cannot find yet. Reads only jobs with work left; the Redis queue reads at most
   * the newest 2,000 of them, so beyond that it may count low.
   */
  pendingInCollection(collection: string): Promise<number>;
  /**
   * Retention and housekeeping, a bounded amount per call: finished jobs past their retention go
   * with their receipts, expired dead letters are discarded. Call it periodically.
   */
  maintain(): Promise<MaintenanceResult>;
  /** Milliseconds until the earliest delayed chunk becomes available, or null if none is waiting. */
  nextAvailableInMs(): Promise<number | null>;
  close(): Promise<void>;
}
