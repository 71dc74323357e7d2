import { randomUUID } from "node:crypto";
import type { Queue } from "bullmq";
import { normaliseTokens } from "../estimated-tokens.js";
import { fairRanks, requestShare } from "../fair-ranks.js";
import type { EnqueueRequest, EnqueueResult } from "../job-queue.js";
import { bullJobId, type ChunkData, KeyLayout, type Reply } from "./bullmq-records.js";

/** BullMQ priorities go up to 2^21 - 1; priority = fair rank + 1. */
const MAX_RANK = 2 ** 21 - 2;
/** An admission may add its BullMQ jobs only this soon after it was recorded (see the reaper). */
const ADMISSION_DEADLINE_MS = 60_000;

export interface AdmissionContext {
  queue: Queue<ChunkData>;
  /** Runs one of the queue's scripts (accounting-scripts.ts) by name. */
  runScript: (name: string, args: ReadonlyArray<string | number>) => Promise<unknown>;
  prefix: string;
  /** Chunks of one collection per fair-queuing rank. */
  fairShare: number;
  /** How long a document's floor is kept (job plus dead-letter retention). */
  floorTtlMs: number;
}

/**
 * Accepting a request on the BullMQ queue, in two steps: one script (ADMIT) checks the bounds and
 * records the job, its receipts, counters and document floors; then its chunks are added as BullMQ
 * jobs with their fair ranks, and the job is confirmed. An admission that dies between the two is
 * settled later (`settle`, called by the queue's housekeeping): confirmed if its jobs were added,
 * else rolled back.
 */
export class BullmqAdmission {
  private readonly layout: KeyLayout;

  constructor(private readonly context: AdmissionContext) {
    this.layout = new KeyLayout(context.prefix);
  }

  async enqueue(request: EnqueueRequest): Promise<EnqueueResult> {
    const jobId = request.jobId ?? randomUUID();
    const n = request.chunks.length;
    const estimates = request.chunks.map((c) => normaliseTokens(c.estimatedTokens));
    const tokens = estimates.reduce((sum, t) => sum + t, 0);
    const maxQueueTokens = request.maxQueueTokens ?? Number.MAX_SAFE_INTEGER;
    const started = Date.now();
    const share = requestShare(this.context.fairShare, request.background);
    const args: Array<string | number> = [
      jobId,
      request.collection,
      n,
      tokens,
      request.maxQueueSize,
      maxQueueTokens,
      started,
      share,
      MAX_RANK,
    ];
    const replaced = [...new Set(request.replaceDocuments ?? [])];
    const carried = [
      ...new Set(request.chunks.flatMap((c) => (c.documentId === null ? [] : [c.documentId]))),
    ];
    args.push(replaced.length, this.context.floorTtlMs, carried.length, ...replaced, ...carried);
    request.chunks.forEach((chunk, index) => {
      args.push(chunk.chunkId, estimates[index] ?? 0, chunk.overflow.policy);
    });
    const k = this.layout.job(jobId);
    const floorKeys = replaced.map((documentId) => this.layout.floor(request.collection, documentId));
    const reply = (await this.call("ragAdmit", [
      8 + floorKeys.length,
      this.layout.queue("stats"),
      this.layout.queue("fair"),
      k.job,
      k.receipts,
      this.layout.queue("jobs"),
      this.layout.queue("admitting"),
      this.layout.queue("active"),
      this.layout.documents(request.collection),
      ...floorKeys,
      ...args,
    ])) as Reply[];
    const kind = String(reply[0]);
    if (kind === "full") {
      return {
        accepted: false,
        reason: "queue_full",
        limit: reply[1] === "tokens" ? "tokens" : "chunks",
        pending: Number(reply[2]),
        pendingTokens: Number(reply[3]),
        maxQueueSize: request.maxQueueSize,
        maxQueueTokens,
      };
    }
    let base: number;
    let rank: number;
    let fill: number;
    if (kind === "dup") {
      const total = Number(reply[1]);
      // Confirmed, or a different request under the same id: it is that job, nothing is added.
      if (reply[5] === "1" || total !== n) return { accepted: true, jobId, count: total, duplicate: true };
      // The first attempt died between recording and adding its jobs: finish it (adding is idempotent).
      [base, rank, fill] = [Number(reply[2]), Number(reply[3]), Number(reply[4])];
    } else {
      [base, rank, fill] = [Number(reply[1]), Number(reply[2]), Number(reply[3])];
    }
    if (Date.now() - started > ADMISSION_DEADLINE_MS) {
      throw new Error("admission took longer than its deadline; the queue will roll it back");
    }
    const { ranks } = fairRanks(rank, { rank, fill }, n, share, MAX_RANK);
    const adding = this.context.queue.addBulk(
      request.chunks.map((chunk, index) => ({
        name: "chunk",
        data: {
          j: jobId,
          i: index,
          c: request.collection,
          k: chunk.chunkId,
          d: chunk.documentId,
          t: chunk.text,
          p: chunk.payload,
          e: estimates[index] ?? 0,
          o: chunk.overflow.policy,
          l: normaliseTokens(chunk.overflow.overlapTokens),
          v: base + index,
        },
        opts: { jobId: bullJobId(jobId, index), priority: (ranks[index] ?? 0) + 1 },
      })),
    );
    try {
      await adding;
    } catch (error) {
      // addBulk is all or none, but a lost reply hides which: settle by looking (or leave it to the
      // reaper when Redis cannot even answer that).
      await this.settle(jobId).catch(() => undefined);
      throw error;
    }
    await this.call("ragConfirm", [
      3,
      k.job,
      this.layout.queue("admitting"),
      this.layout.queue("stats"),
      jobId,
    ]);
    return { accepted: true, jobId, count: n, duplicate: kind === "dup" };
  }

  /**
   * An admission whose BullMQ jobs may or may not have been added (its API process died, or the
   * reply to addBulk was lost): confirmed if they exist (addBulk is all or none), else rolled back,
   * giving its capacity back.
   */
  async settle(jobId: string): Promise<void> {
    const k = this.layout.job(jobId);
    if (await this.context.queue.getJob(bullJobId(jobId, 0))) {
      await this.call("ragConfirm", [
        3,
        k.job,
        this.layout.queue("admitting"),
        this.layout.queue("stats"),
        jobId,
      ]);
      return;
    }
    const rolledBack = await this.call("ragRollback", [
      7,
      this.layout.queue("stats"),
      k.job,
      k.receipts,
      k.jobDead,
      this.layout.queue("jobs"),
      this.layout.queue("admitting"),
      this.layout.queue("active"),
      jobId,
    ]);
    // Its first chunk is gone because a worker finished it (completed jobs are removed at once).
    if (Number(rolledBack) === -1) {
      await this.call("ragConfirm", [
        3,
        k.job,
        this.layout.queue("admitting"),
        this.layout.queue("stats"),
        jobId,
      ]);
    }
  }

  private call(name: string, args: ReadonlyArray<string | number>): Promise<unknown> {
    return this.context.runScript(name, args);
  }
}
