import type { DocumentFloor } from "../domain/types.js";
import type { ChunkOutcome, JobQueue } from "../queue/job-queue.js";
import type { ChunkWrite, ChunkWriteResult, VectorStore } from "../vector-store/vector-store.js";
import { floorOutcome, type PlannedChunk } from "./point-planner.js";

export interface CommitBatch {
  leaseId: string;
  chunks: PlannedChunk[];
  /** How chunks the store found changed since they were planned are retried (an attempt is counted). */
  retryChanged: { delayMs: number; maxAttempts: number };
}

export interface CommitResult {
  /**
   * Chunks whose lease had passed to another worker, so nothing was written or acknowledged for them.
   * Only a committer that checks the lease atomically with its writes knows; elsewhere the queue
   * ignores such acks and the store's version rule keeps such writes harmless.
   */
  fenced: number[];
  /** Outcomes acknowledged: the planned ones, or `superseded` where the store held a newer version. */
  acked: ChunkOutcome[];
  /** Chunks the store found changed since they were planned: failed with a short retry to plan again. */
  changed: number[];
}

/** Makes a processed reservation permanent: vectors written, queue entries acknowledged. */
export interface BatchCommitter {
  commit(batch: CommitBatch): Promise<CommitResult>;
}

export const CHANGED_REASON =
  "the stored chunk changed after this attempt read it (another version was written meanwhile); planning it again";

/** The chunks that write something, grouped by collection, in the order given. */
export function writesByCollection(
  chunks: readonly PlannedChunk[],
): Array<{ collection: string; chunks: Array<PlannedChunk & { write: ChunkWrite }> }> {
  const groups = new Map<string, Array<PlannedChunk & { write: ChunkWrite }>>();
  for (const chunk of chunks) {
    if (chunk.write === null) continue;
    const group = groups.get(chunk.collection) ?? [];
    group.push({ ...chunk, write: chunk.write });
    groups.set(chunk.collection, group);
  }
  return [...groups].map(([collection, list]) => ({ collection, chunks: list }));
}

/** Keeps the store's answers to one group's writes by seq. */
export function recordAnswers(
  results: Map<number, ChunkWriteResult>,
  chunks: ReadonlyArray<{ seq: number }>,
  answers: readonly ChunkWriteResult[],
): void {
  if (answers.length !== chunks.length) {
    throw new Error(`the store answered ${answers.length} of ${chunks.length} writes`);
  }
  chunks.forEach((chunk, index) => {
    results.set(chunk.seq, answers[index] as ChunkWriteResult);
  });
}

/** Turns the store's answers (by seq) into the outcomes to acknowledge and the seqs to retry. */
export function settle(
  chunks: readonly PlannedChunk[],
  results: ReadonlyMap<number, ChunkWriteResult>,
): { acked: ChunkOutcome[]; changed: number[] } {
  const acked: ChunkOutcome[] = [];
  const changed: number[] = [];
  for (const { seq, outcome } of chunks) {
    const result = results.get(seq) ?? "written";
    if (result === "changed") changed.push(seq);
    else if (result === "superseded")
      acked.push({ seq, state: "superseded", model: outcome.model, profile: outcome.profile });
    else acked.push(outcome);
  }
  return { acked, changed };
}

/** The documents of these chunks per collection, for one floor lookup each. */
export function documentsByCollection(chunks: readonly PlannedChunk[]): Map<string, string[]> {
  const documents = new Map<string, Set<string>>();
  for (const { collection, documentId } of chunks) {
    if (documentId === null) continue;
    const set = documents.get(collection) ?? new Set<string>();
    set.add(documentId);
    documents.set(collection, set);
  }
  return new Map([...documents].map(([collection, set]) => [collection, [...set]]));
}

/**
 * Chunks whose document was replaced or deleted after they were planned: their version is below
 * its floor now. They are acknowledged as superseded or cancelled, and what they wrote is undone.
 */
export function belowFloors(
  chunks: readonly PlannedChunk[],
  floors: ReadonlyMap<string, ReadonlyMap<string, DocumentFloor>>,
): Map<number, "superseded" | "cancelled"> {
  const below = new Map<number, "superseded" | "cancelled">();
  for (const chunk of chunks) {
    if (chunk.write === null || chunk.documentId === null) continue;
    const floor = floors.get(chunk.collection)?.get(chunk.documentId);
    if (floor !== undefined && chunk.write.version < floor.version) below.set(chunk.seq, floorOutcome(floor));
  }
  return below;
}

/** The planned outcome, or the one a floor imposes instead. */
export function demote(
  chunks: readonly PlannedChunk[],
  below: ReadonlyMap<number, "superseded" | "cancelled">,
): PlannedChunk[] {
  return chunks.map((chunk) => {
    const state = below.get(chunk.seq);
    if (state === undefined) return chunk;
    const { model, profile } = chunk.outcome;
    return { ...chunk, write: null, outcome: { seq: chunk.seq, state, model, profile } };
  });
}

/** Sends changed chunks back to the queue, to be planned again from what the store holds now. */
export async function retryChanged(queue: JobQueue, batch: CommitBatch, changed: number[]): Promise<void> {
  if (changed.length === 0) return;
  await queue.fail(batch.leaseId, {
    seqs: changed,
    error: CHANGED_REASON,
    retryDelayMs: batch.retryChanged.delayMs,
    maxAttempts: batch.retryChanged.maxAttempts,
  });
}

/**
 * Store first, then ack; used whenever queue and store are not one database (Qdrant, Redis). A
 * crash between the two repeats the write on the next attempt, which the store's version rule turns
 * into no change. The lease is not checked first: a worker that stalled past its lease writes an
 * older version than the one stored meanwhile, which the store refuses (`superseded`), and the
 * queue ignores its acks for chunks another worker holds now.
 */
export class SequentialCommitter implements BatchCommitter {
  constructor(
    private readonly store: VectorStore,
    private readonly queue: JobQueue,
  ) {}

  async commit(batch: CommitBatch): Promise<CommitResult> {
    const results = new Map<number, ChunkWriteResult>();
    for (const group of writesByCollection(batch.chunks)) {
      const answers = await this.store.writeChunks(
        group.collection,
        group.chunks.map((c) => c.write),
      );
      recordAnswers(results, group.chunks, answers);
    }
    // A document replaced or deleted while these chunks were embedded: undo what they wrote. The
    // floor is read after the write, so a replace or delete accepted before this read is seen.
    const below = belowFloors(batch.chunks, await this.floors(batch.chunks));
    for (const group of writesByCollection(batch.chunks.filter((c) => below.has(c.seq)))) {
      await this.store.deleteChunkVersions(
        group.collection,
        group.chunks.map((c) => ({ chunkId: c.write.chunkId, version: c.write.version })),
      );
    }
    const { acked, changed } = settle(demote(batch.chunks, below), results);
    await this.queue.ack(batch.leaseId, acked);
    await retryChanged(this.queue, batch, changed);
    return { fenced: [], acked, changed };
  }

  private async floors(chunks: readonly PlannedChunk[]): Promise<Map<string, Map<string, DocumentFloor>>> {
    const floors = new Map<string, Map<string, DocumentFloor>>();
    for (const [collection, documents] of documentsByCollection(chunks)) {
      floors.set(collection, await this.queue.documentFloors(collection, documents));
    }
    return floors;
  }
}
