import type { Payload, VectorRecord } from "../domain/types.js";
import type { ChunkOutcome, JobQueue } from "../queue/job-queue.js";
import type { VectorStore } from "../vector-store/vector-store.js";

export interface PayloadUpdate {
  id: string;
  payload: Payload;
  payloadHash: string;
  documentId: string | null;
}

export interface CollectionWrite {
  collection: string;
  records: VectorRecord[];
  payloadUpdates: PayloadUpdate[];
  /** Chunks re-embedded in this batch: any of their points not in `keepIds` (old windows) goes. */
  remnants: { chunkIds: string[]; keepIds: string[] };
}

export interface CommitBatch {
  leaseId: string;
  writes: CollectionWrite[];
  outcomes: ChunkOutcome[];
}

/** Makes a processed reservation permanent: vectors written, queue entries acknowledged. */
export interface BatchCommitter {
  commit(batch: CommitBatch): Promise<void>;
}

/**
 * Store first, then ack. A crash between the two repeats the upsert on the next attempt; upserts
 * are idempotent by deterministic point id, so each chunk still ends as exactly one point. Used
 * whenever queue and store are not one database (Qdrant, Redis).
 */
export class SequentialCommitter implements BatchCommitter {
  constructor(
    private readonly store: VectorStore,
    private readonly queue: JobQueue,
  ) {}

  async commit(batch: CommitBatch): Promise<void> {
    for (const write of batch.writes) {
      if (write.records.length > 0) await this.store.upsert(write.collection, write.records);
      // After the upsert: a crash in between leaves extra windows for a moment, never missing ones.
      if (write.remnants.chunkIds.length > 0) {
        await this.store.deleteChunkRemnants(
          write.collection,
          write.remnants.chunkIds,
          write.remnants.keepIds,
        );
      }
      if (write.payloadUpdates.length > 0)
        await this.store.updatePayloads(write.collection, write.payloadUpdates);
    }
    await this.queue.ack(batch.leaseId, batch.outcomes);
  }
}
