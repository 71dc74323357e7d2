import { randomUUID } from "node:crypto";
import { normaliseTokens } from "../estimated-tokens.js";
import { fairRanks, type RankCursor, requestShare } from "../fair-ranks.js";
import type { EnqueueRequest, EnqueueResult } from "../job-queue.js";
import { readCounters } from "./counter-deltas.js";
import type { QueueStatements } from "./queue-statements.js";

/**
 * Accepting a request on the SQLite queue, inside the caller's write transaction: an existing job id
 * is that job (idempotent replay); otherwise the bounds are checked against the counters, and the job,
 * its chunks (with their fair-queuing ranks), its documents and, for a replacement, the documents'
 * floors are written, and the counters moved, all at `clock.now`.
 */
export function admit(
  sql: QueueStatements,
  request: EnqueueRequest,
  clock: { now: number; fairShare: number },
): EnqueueResult {
  const jobId = request.jobId ?? randomUUID();
  const existing = sql.jobExists.get(jobId);
  if (existing !== undefined) return { accepted: true, jobId, count: existing.total, duplicate: true };
  const { pending, pending_tokens: pendingTokens } = readCounters(sql);
  const count = request.chunks.length;
  const estimates = request.chunks.map((chunk) => normaliseTokens(chunk.estimatedTokens));
  const tokens = estimates.reduce((sum, t) => sum + t, 0);
  const maxQueueTokens = request.maxQueueTokens ?? Number.MAX_SAFE_INTEGER;
  const limit =
    pending + count > request.maxQueueSize
      ? "chunks"
      : pendingTokens + tokens > maxQueueTokens
        ? "tokens"
        : null;
  if (limit !== null) {
    return {
      accepted: false,
      reason: "queue_full",
      limit,
      pending,
      pendingTokens,
      maxQueueSize: request.maxQueueSize,
      maxQueueTokens,
    };
  }
  const now = clock.now;
  sql.insertJob.run(jobId, request.collection, count, count, now, now);
  const ranks = assignRanks(
    sql,
    request.collection,
    count,
    requestShare(clock.fairShare, request.background),
  );
  let firstSeq = 0;
  request.chunks.forEach((chunk, index) => {
    const inserted = sql.insertChunk.run(
      jobId,
      request.collection,
      chunk.chunkId,
      chunk.documentId,
      chunk.text,
      JSON.stringify(chunk.payload),
      estimates[index] ?? 0,
      chunk.overflow.policy,
      normaliseTokens(chunk.overflow.overlapTokens),
      now,
      now,
      now,
      ranks[index] ?? 0,
    );
    if (index === 0) firstSeq = Number(inserted.lastInsertRowid);
  });
  for (const documentId of new Set(
    request.chunks.flatMap((c) => (c.documentId === null ? [] : [c.documentId])),
  )) {
    sql.listDocument.run(request.collection, documentId, now);
  }
  const replaced = [...new Set(request.replaceDocuments ?? [])];
  if (replaced.length > 0) {
    sql.markReplacement.run(JSON.stringify(replaced), firstSeq, jobId);
    for (const documentId of replaced) {
      sql.raiseFloor.run(request.collection, documentId, firstSeq, "replace", 1, now);
    }
  }
  sql.addGlobalCounts.run(count, tokens, 0, 0);
  return { accepted: true, jobId, count, duplicate: false };
}

/** Fair-queuing ranks for `count` new chunks of a collection (see fair-ranks.ts). */
function assignRanks(sql: QueueStatements, collection: string, count: number, fairShare: number): number[] {
  const head = sql.headRank.get()?.rank ?? null;
  // Nothing waits: every collection starts afresh, so old ranks cannot grow without bound.
  if (head === null) sql.clearFairness.run();
  const last: RankCursor | undefined = head === null ? undefined : sql.fairness.get(collection);
  const { ranks, cursor } = fairRanks(head ?? 0, last, count, fairShare);
  sql.setFairness.run(collection, cursor.rank, cursor.fill);
  return ranks;
}
