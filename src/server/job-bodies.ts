import type { ChunkReceipt, Job } from "../domain/types.js";
import type { Page, JobSummary as QueuedJobSummary } from "../queue/job-queue.js";
import type { ChunkReceipt as ChunkReceiptBody, Job as JobBody, JobSummary } from "../wire/responses.js";

/** A job as GET /v1/jobs lists it (and GET /v1/jobs/{id} begins it). */
export function jobSummaryBody(job: QueuedJobSummary): JobSummary {
  return {
    id: job.id,
    collection: job.collection,
    state: job.state,
    counts: job.counts,
    created_at: job.createdAt,
    updated_at: job.updatedAt,
  };
}

/** GET /v1/jobs/{id}: the job, its failures and a page of its chunks. */
export function jobBody(job: Job, chunks: Page<ChunkReceipt>): JobBody {
  return {
    ...jobSummaryBody(job),
    failures: job.failures.map((f) => ({
      chunk_id: f.chunkId,
      state: f.state,
      reason: f.reason,
      attempts: f.attempts,
    })),
    chunks: chunks.items.map(receiptBody),
    next_cursor: chunks.nextCursor,
    replace:
      job.replace === null
        ? null
        : {
            documents: job.replace.documents,
            finalized: job.replace.finalized,
            deleted_points: job.replace.deletedPoints,
            deleted_chunk_ids: job.replace.deletedChunkIds,
          },
  };
}

export function receiptBody(receipt: ChunkReceipt): ChunkReceiptBody {
  const pooled = receipt.overflow === "pool" && receipt.windows !== null;
  return {
    id: receipt.seq,
    chunk_id: receipt.chunkId,
    state: receipt.state,
    attempts: receipt.attempts,
    tokens: receipt.tokens,
    truncated: receipt.truncatedTokens > 0,
    truncated_tokens: receipt.truncatedTokens,
    split: receipt.overflow !== "pool" && receipt.windows !== null && receipt.windows > 1,
    // A pooled chunk is one point; how many windows it averages is pooled_windows (when it was embedded).
    windows: pooled ? 1 : receipt.windows,
    pooled_windows: pooled && (receipt.tokens ?? 0) > 0 ? receipt.windows : null,
    overflow: receipt.overflow,
    model: receipt.model,
    profile: receipt.profile,
    last_error: receipt.lastError,
    updated_at: receipt.updatedAt,
  };
}
