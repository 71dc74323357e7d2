/**
 * The BullMQ queue on one redis-server (AOF, appendfsync always), measured directly: enqueue and
 * reserve + ack in chunks/s, and Redis memory (INFO used_memory) per queued chunk and per stored
 * chunk (its receipt, kept until JOB_RETENTION). Chunks carry 1.5 KB of UTF-8 text, like a Korean
 * leaflet section. Part of `npm run bench -- --distributed`.
 */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import type { NewChunk } from "../src/domain/types.js";
import { BullmqJobQueue } from "../src/queue/bullmq/bullmq-job-queue.js";
import { round } from "./lib.js";

export interface RedisQueueFigures {
  chunks: number;
  enqueueChunksPerSecond: number;
  reserveAckChunksPerSecond: number;
  bytesPerQueuedChunk: number;
  bytesPerStoredChunk: number;
  /** Redis bytes and keys of this queue left once retention passed: a constant, whatever was stored. */
  bytesAfterRetention: number;
  keysAfterRetention: number;
}

const TEXT = "가".repeat(500);
const PER_REQUEST = 100;
const PER_RESERVATION = 64;

async function usedMemory(redis: Redis): Promise<number> {
  await redis.call("MEMORY", "PURGE").catch(() => undefined);
  const info = await redis.info("memory");
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
}

export async function measureRedisQueue(url: string, chunks: number): Promise<RedisQueueFigures> {
  const redis = new Redis(url);
  const prefix = `bench-${randomUUID()}`;
  const queue = new BullmqJobQueue({ url, prefix, consume: true, jobRetentionMs: 1000 });
  const keysLeft = async () => (await redis.keys(`{${prefix}}*`)).length;
  try {
    const before = await usedMemory(redis);
    let started = performance.now();
    for (let r = 0; r * PER_REQUEST < chunks; r++) {
      const batch: NewChunk[] = Array.from({ length: PER_REQUEST }, (_, i) => ({
        chunkId: `c${r}-${i}`,
        text: TEXT,
        documentId: `d${r}`,
        payload: { n: i },
        estimatedTokens: 500,
        overflow: { policy: "split", overlapTokens: 32 },
      }));
      const result = await queue.enqueue({ collection: "bench", chunks: batch, maxQueueSize: 10_000_000 });
      if (!result.accepted) throw new Error("bench enqueue refused");
    }
    const enqueueSeconds = (performance.now() - started) / 1000;
    const queued = await usedMemory(redis);
    started = performance.now();
    for (;;) {
      const lease = await queue.reserve({
        maxChunks: PER_RESERVATION,
        maxTokens: Number.MAX_SAFE_INTEGER,
        leaseMs: 60_000,
      });
      if (!lease) break;
      await queue.ack(
        lease.id,
        lease.chunks.map((c) => ({
          seq: c.seq,
          state: "stored" as const,
          tokens: 500,
          truncatedTokens: 0,
          windows: 1,
          model: "m",
          profile: "p",
        })),
      );
    }
    const drainSeconds = (performance.now() - started) / 1000;
    const stored = await usedMemory(redis);
    // Redis expires the finished jobs' records on its own schedule; wait until they are gone.
    const deadline = Date.now() + 30_000;
    do {
      await new Promise((resolve) => setTimeout(resolve, 500));
      await queue.maintain();
    } while ((await keysLeft()) > 10 && Date.now() < deadline);
    const expired = await usedMemory(redis);
    return {
      chunks,
      enqueueChunksPerSecond: round(chunks / enqueueSeconds),
      reserveAckChunksPerSecond: round(chunks / drainSeconds),
      bytesPerQueuedChunk: Math.round((queued - before) / chunks),
      bytesPerStoredChunk: Math.round((stored - before) / chunks),
      bytesAfterRetention: Math.max(0, expired - before),
      keysAfterRetention: await keysLeft(),
    };
  } finally {
    await queue.close();
    redis.disconnect();
  }
}
