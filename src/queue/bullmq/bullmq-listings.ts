import type { ChunkReceipt, DeadLetter, Job, ReceiptState } from "../../domain/types.js";
import { decodeJobCursor, encodeJobCursor, FIRST_PAGE, type JobCursor } from "../job-cursor.js";
import type {
  DeadLetterSelector,
  DocumentPage,
  JobListRequest,
  JobPage,
  JobSummary,
  Page,
  PageRequest,
  QueueStats,
} from "../job-queue.js";
import type { RedisClient } from "../redis/redis-connection.js";
import { STATE_CODES } from "./accounting-scripts.js";
import {
  bullJobId,
  KeyLayout,
  pairs,
  parseBullJobId,
  type Receipt,
  toJobSummary,
  toReceipt,
  toReplacement,
} from "./bullmq-records.js";

const MAX_PAGE = 1000;
/** Job index entries one listing reads at most (filters may skip many); the cursor resumes. */
const JOB_SCAN_BUDGET = 2000;
/** Index entries read beyond a page, for those equal in time to the cursor that must be skipped. */
const SKIP_SLACK = 16;
const MAX_LISTED_FAILURES = 1000;
/** Receipts read per round trip when a listing must scan (a state filter). */
const SCAN_WINDOW = 500;
/** Items one replay/discard/retention step handles: each Redis call stays short. */
export const STEP = 500;
/** Jobs with work left that one pending count of a collection reads at most. */
const PENDING_SCAN_BUDGET = 2000;

/**
 * What the BullMQ queue shows of itself, read-only: a job with its failures, job listings, a job's
 * receipts, dead letters (and which ones a selector names, page by page), a collection's documents,
 * the counters. It reads the records the queue's scripts keep (its own keys beside BullMQ's, see
 * bullmq-records.ts) and changes nothing, so a listing can never disturb work.
 */
export class BullmqListings {
  private readonly layout: KeyLayout;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
  ) {
    this.layout = new KeyLayout(prefix);
  }

  async getJob(jobId: string): Promise<Job | null> {
    const k = this.layout.job(jobId);
    const meta = await this.redis.hgetall(k.job);
    if (meta.total === undefined) return null;
    const summary = toJobSummary(jobId, meta);
    const failures: Job["failures"] = [];
    if (summary.counts.dead > 0) {
      const indexes = await this.redis.zrange(k.jobDead, 0, MAX_LISTED_FAILURES - 1);
      const receipts = await this.readReceipts(jobId, indexes.map(Number));
      for (const r of receipts) {
        if (r) failures.push({ chunkId: r.c, state: "dead", reason: r.er ?? "", attempts: r.a ?? 0 });
      }
    }
    return { ...summary, failures, replace: toReplacement(meta) };
  }

  async listJobs(request: JobListRequest): Promise<JobPage> {
    const limit = pageLimit(request.limit);
    let cursor = decodeJobCursor(request.cursor);
    const items: JobSummary[] = [];
    const phases: JobCursor["phase"][] =
      request.state === "done" ? ["finished"] : request.state ? ["active"] : ["active", "finished"];
    let budget = JOB_SCAN_BUDGET;
    scan: for (const phase of phases) {
      if (phase === "finished" && cursor.phase === "active") cursor = { ...FIRST_PAGE, phase };
      if (phase !== cursor.phase) continue;
      const index = this.layout.queue(phase === "active" ? "active" : "jobs");
      while (budget > 0) {
        // Newest first; equal times are ordered by id, so skip what the cursor already showed.
        const reply = await this.redis.zrevrangebyscore(
          index,
          cursor.createdAt,
          "-inf",
          "WITHSCORES",
          "LIMIT",
          0,
          limit + 1 + SKIP_SLACK,
        );
        const entries = pairs(reply)
          .map(([id, score]) => ({ id, createdAt: Number(score) }))
          .filter((e) => e.createdAt < cursor.createdAt || e.id < cursor.id || cursor.id === "");
        if (entries.length === 0) break;
        const metas = await Promise.all(entries.map((e) => this.redis.hgetall(this.layout.job(e.id).job)));
        for (const [i, entry] of entries.entries()) {
          budget -= 1;
          cursor = { phase, createdAt: entry.createdAt, id: entry.id };
          const meta = metas[i];
          if (!meta || meta.total === undefined) continue; // expired; the index is pruned by maintain()
          const summary = toJobSummary(entry.id, meta);
          if (phase === "finished" && summary.state !== "done") continue; // listed among the active
          if (request.collection !== undefined && summary.collection !== request.collection) continue;
          if (request.state !== undefined && summary.state !== request.state) continue;
          items.push(summary);
          if (items.length > limit) break scan;
        }
        if (entries.length < limit + 1) break;
      }
    }
    const more = items.length > limit || budget <= 0;
    const page = items.slice(0, limit);
    const last = items.length > limit ? page[page.length - 1] : null;
    const next = last
      ? {
          phase: last.state === "done" ? ("finished" as const) : ("active" as const),
          createdAt: Date.parse(last.createdAt),
          id: last.id,
        }
      : cursor;
    return { items: page, nextCursor: more ? encodeJobCursor(next) : null };
  }

  async listChunks(
    jobId: string,
    request: PageRequest & { state?: ReceiptState },
  ): Promise<Page<ChunkReceipt>> {
    const limit = pageLimit(request.limit);
    const meta = await this.redis.hmget(this.layout.job(jobId).job, "total", "base");
    if (meta[0] === null || meta[1] === null) return { items: [], nextCursor: null };
    const total = Number(meta[0]);
    const base = Number(meta[1]);
    const wanted = request.state === undefined ? null : STATE_CODES[request.state];
    let index =
      request.after !== undefined && Number.isFinite(request.after)
        ? Math.max(0, Math.floor(request.after) - base + 1)
        : 0;
    const items: ChunkReceipt[] = [];
    while (index < total && items.length <= limit) {
      const indexes = range(index, Math.min(total, index + (wanted === null ? limit + 1 : SCAN_WINDOW)));
      const receipts = await this.readReceipts(jobId, indexes);
      receipts.forEach((r, i) => {
        if (r && (wanted === null || r.s === wanted) && items.length <= limit)
          items.push(toReceipt(r, base + (indexes[i] ?? 0)));
      });
      index = (indexes[indexes.length - 1] ?? index) + 1;
    }
    const more = items.length > limit;
    const page = more ? items.slice(0, limit) : items;
    return { items: page, nextCursor: more ? (page[page.length - 1]?.seq ?? null) : null };
  }

  async listDeadLetters(request: PageRequest & { jobId?: string }): Promise<Page<DeadLetter>> {
    const limit = pageLimit(request.limit);
    const after =
      request.after !== undefined && Number.isFinite(request.after) ? Math.floor(request.after) : 0;
    let entries: Array<{ bullId: string; seq: number }>;
    if (request.jobId === undefined) {
      const reply = await this.redis.zrangebyscore(
        this.layout.queue("dead"),
        `(${after}`,
        "+inf",
        "WITHSCORES",
        "LIMIT",
        0,
        limit + 1,
      );
      entries = pairs(reply).map(([bullId, seq]) => ({ bullId, seq: Number(seq) }));
    } else {
      const jobId = request.jobId;
      const reply = await this.redis.zrangebyscore(
        this.layout.job(jobId).jobDead,
        `(${after}`,
        "+inf",
        "WITHSCORES",
        "LIMIT",
        0,
        limit + 1,
      );
      entries = pairs(reply).map(([index, seq]) => ({
        bullId: bullJobId(jobId, Number(index)),
        seq: Number(seq),
      }));
    }
    const more = entries.length > limit;
    const page = more ? entries.slice(0, limit) : entries;
    const items: DeadLetter[] = [];
    const collections = new Map<string, string>();
    for (const { bullId, seq } of page) {
      const { jobId, index } = parseBullJobId(bullId);
      const [receipt] = await this.readReceipts(jobId, [index]);
      if (!receipt) continue;
      if (!collections.has(jobId))
        collections.set(jobId, (await this.redis.hget(this.layout.job(jobId).job, "collection")) ?? "");
      items.push({
        seq,
        jobId,
        collection: collections.get(jobId) ?? "",
        chunkId: receipt.c,
        reason: receipt.er ?? "",
        attempts: receipt.a ?? 0,
        deadAt: new Date(receipt.da ?? receipt.t).toISOString(),
      });
    }
    return { items, nextCursor: more ? (page[page.length - 1]?.seq ?? null) : null };
  }

  async stats(): Promise<QueueStats> {
    const [pending, pendingTokens, running, dead] = await this.redis.hmget(
      this.layout.queue("stats"),
      "pending",
      "pending_tokens",
      "running",
      "dead",
    );
    return {
      pending: Number(pending ?? 0),
      running: Number(running ?? 0),
      dead: Number(dead ?? 0),
      pendingTokens: Number(pendingTokens ?? 0),
    };
  }

  async pendingInCollection(collection: string): Promise<number> {
    let pending = 0;
    // Jobs with work left, newest first (a search right after an ingest finds that job at once).
    for (let start = 0; start < PENDING_SCAN_BUDGET; start += STEP) {
      const jobIds = await this.redis.zrevrange(this.layout.queue("active"), start, start + STEP - 1);
      const pipeline = this.redis.pipeline();
      for (const jobId of jobIds)
        pipeline.hmget(this.layout.job(jobId).job, "collection", "queued", "running", "failed");
      for (const [error, fields] of (await pipeline.exec()) ?? []) {
        if (error) throw error;
        const [owner, queued, running, failed] = fields as Array<string | null>;
        if (owner === collection) pending += Number(queued ?? 0) + Number(running ?? 0) + Number(failed ?? 0);
      }
      if (jobIds.length < STEP) break;
    }
    return pending;
  }

  async readReceipts(jobId: string, indexes: number[]): Promise<Array<Receipt | null>> {
    if (indexes.length === 0) return [];
    const raw = await this.redis.hmget(this.layout.job(jobId).receipts, ...indexes.map(String));
    return raw.map((r) => (r === null ? null : (JSON.parse(r) as Receipt)));
  }

  async listDocuments(collection: string, request: { after?: string; limit: number }): Promise<DocumentPage> {
    const limit = pageLimit(request.limit);
    const from = request.after ? `(${request.after}` : "-";
    const ids = await this.redis.zrangebylex(
      this.layout.documents(collection),
      from,
      "+",
      "LIMIT",
      0,
      limit + 1,
    );
    const page = ids.slice(0, limit);
    return { documentIds: page, nextCursor: ids.length > limit ? (page[page.length - 1] ?? null) : null };
  }

  /** Calls `step` on pages of the selected dead letters' BullMQ job ids; sums what it returns. */
  async eachDeadLetterPage(
    selector: DeadLetterSelector,
    step: (bullIds: string[]) => Promise<number>,
  ): Promise<number> {
    let total = 0;
    if ("seqs" in selector) {
      const seqs = [...new Set(selector.seqs.filter((s) => Number.isSafeInteger(s) && s > 0))];
      for (let start = 0; start < seqs.length; start += STEP) {
        const bullIds: string[] = [];
        for (const seq of seqs.slice(start, start + STEP)) {
          const [bullId] = await this.redis.zrangebyscore(this.layout.queue("dead"), seq, seq);
          if (bullId) bullIds.push(bullId);
        }
        total += await step(bullIds);
      }
      return total;
    }
    let after = 0;
    for (;;) {
      let bullIds: string[];
      let scores: number[];
      if ("jobId" in selector) {
        const reply = await this.redis.zrangebyscore(
          this.layout.job(selector.jobId).jobDead,
          `(${after}`,
          "+inf",
          "WITHSCORES",
          "LIMIT",
          0,
          STEP,
        );
        const entries = pairs(reply);
        bullIds = entries.map(([index]) => bullJobId(selector.jobId, Number(index)));
        scores = entries.map(([, seq]) => Number(seq));
      } else {
        const entries = pairs(
          await this.redis.zrangebyscore(
            this.layout.queue("dead"),
            `(${after}`,
            "+inf",
            "WITHSCORES",
            "LIMIT",
            0,
            STEP,
          ),
        );
        bullIds = entries.map(([bullId]) => bullId);
        scores = entries.map(([, seq]) => Number(seq));
      }
      if (bullIds.length === 0) return total;
      total += await step(bullIds);
      after = scores[scores.length - 1] ?? after;
      if (bullIds.length < STEP) return total;
    }
  }
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}

export function pageLimit(limit: number): number {
  return Number.isFinite(limit) ? Math.min(MAX_PAGE, Math.max(1, Math.floor(limit))) : MAX_PAGE;
}
