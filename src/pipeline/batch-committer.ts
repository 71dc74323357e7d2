import type { Payload, VectorRecord } from "../domain/types.js";
import type { ChunkOutcome, JobQueue } from "../queue/job-queue.js";
import type { VectorStore } from "../vector-store/vector-store.js";

export interface PayloadUpdate {
  id: string;
  payload: Payload;
  payloadHash: string;
  documentId: string | null;
}

/** What one reserved chunk changes in the store. */
export interface ChunkWrite {
  /** The queue entry, so a write can be dropped when its lease has passed to another worker. */
  seq: number;
  collection: string;
  /** Its points: one, or one per window of a split chunk. */
  records: VectorRecord[];
  /** Re-embedded: any other point of this client chunk id (old windows) must go. */
  replaces: string | null;
  /** Only the payload changed: the vector stays. */
  payloadUpdate: PayloadUpdate | null;
}

export interface CommitBatch {
  leaseId: string;
  writes: ChunkWrite[];
  outcomes: ChunkOutcome[];
}

export interface CommitResult {
  /** Seqs whose results were dropped: their lease had passed to another worker, which owns them now. */
  fenced: number[];
}

/** Makes a processed reservation permanent: vectors written, queue entries acknowledged. */
export interface BatchCommitter {
  commit(batch: CommitBatch): Promise<CommitResult>;
}

/** One collection's share of a batch, in the shape the stores take. */
export interface CollectionWrites {
  collection: string;
  /**
   * Window points first, then the points that carry each chunk's fingerprint (the chunk's own id).
   * A store that writes them in several requests can fail half way: the fingerprint must then still
   * be the old one, so the retry re-embeds instead of taking the half-written chunk as unchanged.
   */
  records: VectorRecord[];
  remnants: { chunkIds: string[]; keepIds: string[] };
  payloadUpdates: PayloadUpdate[];
}

export function byCollection(writes: ChunkWrite[]): CollectionWrites[] {
  const groups = new Map<string, CollectionWrites & { fingerprints: VectorRecord[] }>();
  for (const write of writes) {
    let group = groups.get(write.collection);
    if (!group) {
      group = {
        collection: write.collection,
        records: [],
        fingerprints: [],
        remnants: { chunkIds: [], keepIds: [] },
        payloadUpdates: [],
      };
      groups.set(write.collection, group);
    }
    for (const record of write.records) {
      // Window 0 (or the single point) keeps the chunk's own point id and carries its fingerprint.
      if (record.parentChunkId !== null && record.chunkId !== `${record.parentChunkId}#0`) {
        group.records.push(record);
      } else {
        group.fingerprints.push(record);
      }
    }
    if (write.replaces !== null) {
      group.remnants.chunkIds.push(write.replaces);
      group.remnants.keepIds.push(...write.records.map((r) => r.id));
    }
    if (write.payloadUpdate) group.payloadUpdates.push(write.payloadUpdate);
  }
  return [...groups.values()].map(({ fingerprints, ...group }) => ({
    ...group,
    records: [...group.records, ...fingerprints],
  }));
}

/** The part of a batch whose chunks the lease still holds, and the seqs dropped from it. */
export function keepHeld(
  batch: CommitBatch,
  held: ReadonlySet<number>,
): { batch: CommitBatch; fenced: number[] } {
  const fenced = seqsOf(batch).filter((seq) => !held.has(seq));
  if (fenced.length === 0) return { batch, fenced };
  return {
    batch: {
      leaseId: batch.leaseId,
      writes: batch.writes.filter((w) => held.has(w.seq)),
      outcomes: batch.outcomes.filter((o) => held.has(o.seq)),
    },
    fenced,
  };
}

export function seqsOf(batch: CommitBatch): number[] {
  return [...new Set([...batch.writes.map((w) => w.seq), ...batch.outcomes.map((o) => o.seq)])];
}

/**
 * Store first, then ack. A crash between the two repeats the upsert on the next attempt; upserts
 * are idempotent by deterministic point id, so each chunk still ends as exactly one point. Used
 * whenever queue and store are not one database (Qdrant, Redis).
 *
 * Writes are fenced: chunks whose lease has passed to another worker (this one stalled past its
 * lease) are left alone, so a slow worker cannot overwrite a newer version another worker stored.
 * The check and the upsert are two systems, so a lease that expires in between is not caught;
 * leases are renewed every third of their length, which makes that a stall of a whole lease.
 */
export class SequentialCommitter implements BatchCommitter {
  constructor(
    private readonly store: VectorStore,
    private readonly queue: JobQueue,
  ) {}

  async commit(input: CommitBatch): Promise<CommitResult> {
    const held = new Set(await this.queue.held(input.leaseId, seqsOf(input)));
    const { batch, fenced } = keepHeld(input, held);
    for (const write of byCollection(batch.writes)) {
      // Old windows go before the new points are written: a crash in between leaves the chunk's old
      // fingerprint, so the retry embeds and writes it again; the other order could leave stale
      // windows behind a fingerprint that already says "unchanged".
      if (write.remnants.chunkIds.length > 0) {
        await this.store.deleteChunkRemnants(
          write.collection,
          write.remnants.chunkIds,
          write.remnants.keepIds,
        );
      }
      if (write.records.length > 0) await this.store.upsert(write.collection, write.records);
      if (write.payloadUpdates.length > 0)
        await this.store.updatePayloads(write.collection, write.payloadUpdates);
    }
    await this.queue.ack(batch.leaseId, batch.outcomes);
    return { fenced };
  }
}
