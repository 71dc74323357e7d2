/**
 * The SQLite queue's rows as the JobQueue interface returns them: a reserved chunk, a job and its
 * summary, a receipt, a dead letter. Pure: no database.
 */
import type { ChunkReceipt, DeadLetter, Job, Payload, QueuedChunk } from "../../domain/types.js";
import { toJobCounts, toJobState } from "../job-counts.js";
import type { JobSummary } from "../job-queue.js";
import type { CandidateRow, DeadLetterRow, FailureRow, JobRow, ReceiptRow } from "./queue-statements.js";
import type { RowState } from "./row-state.js";

export function toQueuedChunk(row: CandidateRow): QueuedChunk {
  return {
    seq: row.seq,
    // seq is AUTOINCREMENT: it grows with every accepted chunk, so it orders versions of one chunk id.
    version: row.seq,
    jobId: row.job_id,
    collection: row.collection,
    chunkId: row.chunk_id,
    documentId: row.document_id,
    text: row.text,
    payload: JSON.parse(row.payload) as Payload,
    estimatedTokens: row.est_tokens,
    attempts: row.attempts,
    overflow: { policy: row.overflow, overlapTokens: row.overlap_tokens },
  };
}

export function toJobSummary(row: JobRow, retrying = 0): JobSummary {
  return {
    id: row.id,
    collection: row.collection,
    state: toJobState(row),
    counts: toJobCounts(row, retrying),
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}

export function toJob(row: JobRow, failures: FailureRow[], retrying: number): Job {
  return {
    ...toJobSummary(row, retrying),
    replace:
      row.replace_docs === null
        ? null
        : {
            documents: JSON.parse(row.replace_docs) as string[],
            finalized: row.finalized_at !== null,
            deletedPoints: row.deleted_points,
            deletedChunkIds: row.deleted_ids === null ? [] : (JSON.parse(row.deleted_ids) as string[]),
          },
    failures: failures.map((f) => ({
      chunkId: f.chunk_id,
      state: "dead",
      reason: f.last_error ?? "",
      attempts: f.attempts,
    })),
  };
}

export function toReceipt(row: ReceiptRow): ChunkReceipt {
  const retrying =
    row.state === "retrying" || (row.state === "queued" && row.attempts > 0 && row.last_error !== null);
  return {
    seq: row.seq,
    chunkId: row.chunk_id,
    state: retrying ? "failed" : (row.state as Exclude<RowState, "retrying">),
    attempts: row.attempts,
    tokens: row.tokens,
    truncatedTokens: row.truncated_tokens ?? 0,
    windows: row.windows,
    overflow: row.overflow,
    model: row.model,
    profile: row.profile,
    lastError: row.last_error,
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}

export function toDeadLetter(row: DeadLetterRow): DeadLetter {
  return {
    seq: row.seq,
    jobId: row.job_id,
    collection: row.collection,
    chunkId: row.chunk_id,
    reason: row.last_error ?? "",
    attempts: row.attempts,
    deadAt: new Date(row.dead_at ?? row.updated_at).toISOString(),
  };
}
