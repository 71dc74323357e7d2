import type { DocumentFloor } from "../../domain/types.js";
import type { Finalization } from "../job-queue.js";
import type { RedisClient } from "../redis/redis-connection.js";
import { KeyLayout, parseFloor } from "./bullmq-records.js";

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
  private readonly layout: KeyLayout;

  constructor(private readonly context: DocumentsContext) {
    this.layout = new KeyLayout(context.prefix);
  }

  async floors(collection: string, documentIds: string[]): Promise<Map<string, DocumentFloor>> {
    const unique = [...new Set(documentIds)];
    const floors = new Map<string, DocumentFloor>();
    if (unique.length === 0) return floors;
    const values = await this.context.redis.mget(
      ...unique.map((documentId) => this.layout.floor(collection, documentId)),
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
      this.layout.queue("stats"),
      this.layout.floor(collection, documentId),
      this.layout.documents(collection),
      this.context.floorTtlMs,
      documentId,
    ]);
    const floor = parseFloor(String(reply));
    if (!floor) throw new Error(`unexpected floor ${String(reply)}`);
    return floor;
  }

  async pendingFinalizations(limit: number): Promise<Finalization[]> {
    const jobIds = await this.context.redis.zrange(
      this.layout.queue("finalize"),
      0,
      Math.max(1, Math.floor(limit)) - 1,
    );
    const found: Finalization[] = [];
    for (const jobId of jobIds) {
      const [collection, docs, floor] = await this.context.redis.hmget(
        this.layout.job(jobId).job,
        "collection",
        "docs",
        "floor",
      );
      if (!collection || !docs || !floor) {
        await this.context.redis.zrem(this.layout.queue("finalize"), jobId); // the job record expired meanwhile
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
      this.layout.job(jobId).job,
      this.layout.queue("finalize"),
      jobId,
      result.deletedPoints,
      JSON.stringify(result.deletedChunkIds.slice(0, MAX_LISTED_DELETIONS)),
    ]);
  }
}
