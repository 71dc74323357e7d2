import type { DocumentFloor } from "../../domain/types.js";
import type { Finalization } from "../job-queue.js";
import type { RedisClient } from "../redis/redis-connection.js";
import { documentsKey, floorKey, jobKeys, parseFloor, queueKey } from "./bullmq-records.js";

/** Chunk ids of a replacement's deleted points kept on its job (the count is always exact). */
const MAX_LISTED_DELETIONS = 1000;

export interface DocumentsContext {
  redis: RedisClient;
  prefix: string;
  /** How long a document's floor is kept (job plus dead-letter retention). */
  floorTtlMs: number;
  /** Runs one of the queue's scripts (accounting-scripts.ts) by name. */
  runScript: (name: string, args: ReadonlyArray<string | number>) => Promise<unknown>;
}

/**
 * Documents on the BullMQ queue: their floors (the version below which a chunk of a replaced or
 * deleted document is superseded or cancelled), a document's deletion, and the finished
 * replacements whose old points are still to be deleted.
 */
export class BullmqDocuments {
  constructor(private readonly context: DocumentsContext) {}

  async floors(collection: string, documentIds: string[]): Promise<Map<string, DocumentFloor>> {
    const unique = [...new Set(documentIds)];
    const floors = new Map<string, DocumentFloor>();
    if (unique.length === 0) return floors;
    const values = await this.context.redis.mget(
      ...unique.map((documentId) => this.floorKey(collection, documentId)),
    );
    unique.forEach((documentId, i) => {
      const floor = parseFloor(values[i] ?? null);
      if (floor) floors.set(documentId, floor);
    });
    return floors;
  }

  async delete(collection: string, documentId: string): Promise<DocumentFloor> {
    const reply = await this.context.runScript("ragDeleteFloor", [
      3,
      this.key("stats"),
      this.floorKey(collection, documentId),
      this.documentsKey(collection),
      this.context.floorTtlMs,
      documentId,
    ]);
    const floor = parseFloor(String(reply));
    if (!floor) throw new Error(`unexpected floor ${String(reply)}`);
    return floor;
  }

  async pendingFinalizations(limit: number): Promise<Finalization[]> {
    const jobIds = await this.context.redis.zrange(
      this.key("finalize"),
      0,
      Math.max(1, Math.floor(limit)) - 1,
    );
    const found: Finalization[] = [];
    for (const jobId of jobIds) {
      const [collection, docs, floor] = await this.context.redis.hmget(
        this.keys(jobId).job,
        "collection",
        "docs",
        "floor",
      );
      if (!collection || !docs || !floor) {
        await this.context.redis.zrem(this.key("finalize"), jobId); // the job record expired meanwhile
        continue;
      }
      found.push({ jobId, collection, documents: JSON.parse(docs) as string[], version: Number(floor) });
    }
    return found;
  }

  async completeFinalization(
    jobId: string,
    result: { deletedPoints: number; deletedChunkIds: string[] },
  ): Promise<void> {
    await this.context.runScript("ragFinalized", [
      2,
      this.keys(jobId).job,
      this.key("finalize"),
      jobId,
      result.deletedPoints,
      JSON.stringify(result.deletedChunkIds.slice(0, MAX_LISTED_DELETIONS)),
    ]);
  }

  private key(name: string): string {
    return queueKey(this.context.prefix, name);
  }

  private keys(jobId: string) {
    return jobKeys(this.context.prefix, jobId);
  }

  private floorKey(collection: string, documentId: string): string {
    return floorKey(this.context.prefix, collection, documentId);
  }

  private documentsKey(collection: string): string {
    return documentsKey(this.context.prefix, collection);
  }
}
