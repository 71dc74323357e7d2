import type { BatchCommitter, CommitBatch } from "../pipeline/batch-committer.js";
import type { SqliteJobQueue } from "../queue/sqlite/sqlite-job-queue.js";
import type { SqliteVecStore } from "../vector-store/sqlite-vec/sqlite-vec-store.js";
import type { SqliteDatabase } from "./sqlite-database.js";

/**
 * Embedded mode: queue and vectors live in one SQLite file, so writing the vectors and
 * acknowledging the queue entries commit in one transaction. A crash leaves either both or
 * neither; a chunk is never stored without being acked, nor acked without being stored.
 */
export class SqliteAtomicCommitter implements BatchCommitter {
  constructor(
    private readonly db: SqliteDatabase,
    private readonly store: SqliteVecStore,
    private readonly queue: SqliteJobQueue,
  ) {}

  async commit(batch: CommitBatch): Promise<void> {
    this.db
      .transaction(() => {
        for (const write of batch.writes) {
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
      })
      .immediate();
  }
}
