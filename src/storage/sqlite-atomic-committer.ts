import {
  type BatchCommitter,
  byCollection,
  type CommitBatch,
  type CommitResult,
  keepHeld,
  seqsOf,
} from "../pipeline/batch-committer.js";
import type { SqliteJobQueue } from "../queue/sqlite/sqlite-job-queue.js";
import type { SqliteVecStore } from "../vector-store/sqlite-vec/sqlite-vec-store.js";
import type { SqliteDatabase } from "./sqlite-database.js";

/**
 * Embedded mode: queue and vectors live in one SQLite file, so writing the vectors and
 * acknowledging the queue entries commit in one transaction. A crash leaves either both or
 * neither; a chunk is never stored without being acked, nor acked without being stored. The lease
 * is checked in the same transaction, so a worker that lost its chunks to another (it stalled past
 * its lease) writes nothing for them.
 */
export class SqliteAtomicCommitter implements BatchCommitter {
  constructor(
    private readonly db: SqliteDatabase,
    private readonly store: SqliteVecStore,
    private readonly queue: SqliteJobQueue,
  ) {}

  async commit(input: CommitBatch): Promise<CommitResult> {
    return this.db
      .transaction((): CommitResult => {
        const held = new Set(this.queue.heldSync(input.leaseId, seqsOf(input)));
        const { batch, fenced } = keepHeld(input, held);
        for (const write of byCollection(batch.writes)) {
          if (write.records.length > 0) this.store.upsertSync(write.collection, write.records);
          if (write.remnants.chunkIds.length > 0) {
            this.store.deleteChunkRemnantsSync(
              write.collection,
              write.remnants.chunkIds,
              write.remnants.keepIds,
            );
          }
          if (write.payloadUpdates.length > 0)
            this.store.updatePayloadsSync(write.collection, write.payloadUpdates);
        }
        this.queue.ackSync(batch.leaseId, batch.outcomes);
        return { fenced };
      })
      .immediate();
  }
}
