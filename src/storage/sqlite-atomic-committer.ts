import {
  type BatchCommitter,
  belowFloors,
  type CommitBatch,
  type CommitResult,
  demote,
  documentsByCollection,
  recordAnswers,
  retryChanged,
  settle,
  writesByCollection,
} from "../pipeline/batch-committer.js";
import type { SqliteJobQueue } from "../queue/sqlite/sqlite-job-queue.js";
import type { SqliteVecStore } from "../vector-store/sqlite-vec/sqlite-vec-store.js";
import type { ChunkWriteResult } from "../vector-store/vector-store.js";
import type { SqliteDatabase } from "./sqlite-database.js";

/**
 * Embedded mode: queue and vectors live in one SQLite file, so checking the lease, writing the
 * vectors and acknowledging the queue entries commit in one transaction. A crash leaves either both
 * or neither; a chunk is never stored without being acked, nor acked without being stored. A worker
 * that lost its chunks to another (it stalled past its lease) writes nothing for them: the check is
 * free here, though the store's version rule would keep such a write harmless anyway.
 */
export class SqliteAtomicCommitter implements BatchCommitter {
  constructor(
    private readonly db: SqliteDatabase,
    private readonly store: SqliteVecStore,
    private readonly queue: SqliteJobQueue,
  ) {}

  async commit(batch: CommitBatch): Promise<CommitResult> {
    const result = this.db
      .transaction((): CommitResult => {
        const held = new Set(
          this.queue.heldSync(
            batch.leaseId,
            batch.chunks.map((c) => c.seq),
          ),
        );
        // A document replaced or deleted since these chunks were planned: they write nothing.
        const mineAsPlanned = batch.chunks.filter((c) => held.has(c.seq));
        const floors = new Map(
          [...documentsByCollection(mineAsPlanned)].map(([collection, documents]) => [
            collection,
            this.queue.documentFloorsSync(collection, documents),
          ]),
        );
        const mine = demote(mineAsPlanned, belowFloors(mineAsPlanned, floors));
        const results = new Map<number, ChunkWriteResult>();
        for (const group of writesByCollection(mine)) {
          const answers = this.store.writeChunksSync(
            group.collection,
            group.chunks.map((c) => c.write),
          );
          recordAnswers(results, group.chunks, answers);
        }
        const { acked, changed } = settle(mine, results);
        this.queue.ackSync(batch.leaseId, acked);
        const fenced = batch.chunks.filter((c) => !held.has(c.seq)).map((c) => c.seq);
        return { fenced, acked, changed };
      })
      .immediate();
    // Outside the transaction (the queue has no synchronous fail): a crash in between only leaves
    // these chunks to come back at lease expiry, to be planned again then.
    await retryChanged(this.queue, batch, result.changed);
    return result;
  }
}
