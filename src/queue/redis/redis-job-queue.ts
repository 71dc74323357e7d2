import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import type {
  ChunkReceipt,
  DeadLetter,
  Job,
  Payload,
  QueuedChunk,
  QueuedOverflowPolicy,
  ReceiptState,
} from "../../domain/types.js";
import { toJobCounts, toJobState } from "../job-counts.js";
import type {
  ChunkOutcome,
  DeadLetterSelector,
  EnqueueRequest,
  EnqueueResult,
  FailRequest,
  JobQueue,
  Lease,
  MaintenanceResult,
  Page,
  PageRequest,
  QueueStats,
  ReserveRequest,
} from "../job-queue.js";
import { QUEUE_SCRIPTS, type QueueScriptName, scriptSource } from "./lua-scripts.js";

export interface RedisJobQueueOptions {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://`). */
  url: string;
  /** Prefix of every key, so several deployments can share one Redis (default `rag:`). */
  prefix?: string;
  /**
   * Times a chunk may be taken back from a worker that died or lost its lease before it becomes a
   * dead letter (default 5). A graceful release does not count.
   */
  maxStalls?: number;
  /**
   * Clock in ms. By default the Redis server's clock is used, so processes on several hosts agree
   * on lease expiry and retry delays; inject one only for tests or a single process.
   */
  now?: () => number;
  /** Connection errors (ioredis reconnects by itself; commands fail while it cannot). */
  onError?: (error: Error) => void;
}

export const DEFAULT_REDIS_PREFIX = "rag:";
const DEFAULT_MAX_STALLS = 5;
const MAX_PAGE = 1000;
const MAX_LISTED_FAILURES = 1000;
/** Upper bound on ready chunks inspected per reservation (as in the SQLite queue). */
const MAX_SCANNED_PER_RESERVE = 10_000;

type Reply = string | null | Reply[];
type ScriptCall = (prefix: string, ...args: Array<string | number>) => Promise<unknown>;

/**
 * The distributed queue: chunks, jobs and counters in Redis, every operation one Lua script (see
 * lua-scripts.ts), so acceptance against the capacity, reservations and counter updates are atomic
 * across any number of API and worker processes. Enqueue is durable when it resolves only if Redis
 * runs with `appendonly yes` and `appendfsync always` (see docs/redis-queue.md).
 */
export class RedisJobQueue implements JobQueue {
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly maxStalls: number;
  private readonly clock: (() => number) | undefined;

  constructor(options: RedisJobQueueOptions) {
    this.prefix = options.prefix ?? DEFAULT_REDIS_PREFIX;
    const maxStalls = options.maxStalls ?? DEFAULT_MAX_STALLS;
    this.maxStalls = Number.isFinite(maxStalls) ? Math.max(1, Math.floor(maxStalls)) : DEFAULT_MAX_STALLS;
    this.clock = options.now;
    this.redis = new Redis(options.url);
    const onError = options.onError;
    // Without a listener ioredis prints every reconnect failure; commands still reject.
    this.redis.on("error", (error: Error) => onError?.(error));
    for (const name of Object.keys(QUEUE_SCRIPTS) as QueueScriptName[]) {
      this.redis.defineCommand(name, { numberOfKeys: 1, lua: scriptSource(name) });
    }
  }

  async enqueue(request: EnqueueRequest): Promise<EnqueueResult> {
    const count = request.chunks.length;
    const jobId = randomUUID();
    const args: Array<string | number> = [
      this.nowArg(),
      request.maxQueueSize,
      jobId,
      request.collection,
      count,
    ];
    for (const chunk of request.chunks) {
      args.push(
        chunk.chunkId,
        chunk.documentId === null ? "0" : "1",
        chunk.documentId ?? "",
        chunk.text,
        JSON.stringify(chunk.payload),
        normaliseTokens(chunk.estimatedTokens),
        chunk.overflow.policy,
        normaliseTokens(chunk.overflow.overlapTokens),
      );
    }
    const reply = (await this.call("ragqEnqueue", ...args)) as Reply[];
    if (Number(reply[0]) === 1) {
      return { accepted: true, jobId, count, duplicate: false };
    }
    return {
      accepted: false,
      reason: "queue_full",
      limit: "chunks",
      pending: Number(reply[1]),
      pendingTokens: 0,
      maxQueueSize: request.maxQueueSize,
      maxQueueTokens: request.maxQueueTokens ?? Number.MAX_SAFE_INTEGER,
    };
  }

  async reserve(request: ReserveRequest): Promise<Lease | null> {
    const leaseId = randomUUID();
    const reply = (await this.call(
      "ragqReserve",
      this.nowArg(),
      Math.max(1, Math.floor(request.maxChunks)),
      Math.max(0, Math.floor(request.maxTokens)),
      Math.max(0, Math.ceil(request.leaseMs)),
      leaseId,
      this.maxStalls,
      MAX_SCANNED_PER_RESERVE,
    )) as Reply[];
    if (reply.length === 0) return null;
    const [expiresAt, ...rows] = reply;
    return {
      id: leaseId,
      expiresAt: Number(expiresAt),
      chunks: rows.map((row) => toQueuedChunk(row as Reply[])),
    };
  }

  async renew(leaseId: string, leaseMs: number): Promise<boolean> {
    const held = await this.call("ragqRenew", this.nowArg(), leaseId, Math.max(0, Math.ceil(leaseMs)));
    return Number(held) > 0;
  }

  async held(leaseId: string, seqs: number[]): Promise<number[]> {
    const unique = [...new Set(seqs.filter((seq) => Number.isSafeInteger(seq)))];
    if (unique.length === 0) return [];
    const reply = (await this.call("ragqHeld", leaseId, ...unique)) as Reply[];
    return reply.map(Number);
  }

  /** Outcomes for chunks this lease no longer holds are ignored (fencing). */
  async ack(leaseId: string, outcomes: ChunkOutcome[]): Promise<void> {
    if (outcomes.length === 0) return;
    const args: Array<string | number> = [this.nowArg(), leaseId, outcomes.length];
    for (const o of outcomes) {
      if (o.state === "stored") {
        args.push(o.seq, "stored", o.tokens, o.truncatedTokens, o.windows, o.model, o.profile);
      } else if (o.state === "unchanged" || o.state === "superseded") {
        args.push(o.seq, "unchanged", "", "", "", o.model, o.profile);
      } else {
        throw new Error(`unknown chunk outcome state: ${String((o as { state: unknown }).state)}`);
      }
    }
    await this.call("ragqAck", ...args);
  }

  async fail(leaseId: string, request: FailRequest): Promise<void> {
    const seqs = uniqueSeqs(request.seqs);
    if (seqs.length === 0) return;
    await this.call(
      "ragqFail",
      this.nowArg(),
      leaseId,
      request.error,
      Math.max(0, Math.ceil(request.retryDelayMs)),
      request.maxAttempts,
      ...seqs,
    );
  }

  async release(leaseId: string): Promise<void> {
    await this.call("ragqRelease", this.nowArg(), leaseId);
  }

  async getJob(jobId: string): Promise<Job | null> {
    const reply = (await this.call("ragqGetJob", jobId, MAX_LISTED_FAILURES)) as Reply[][];
    const [row, ...failures] = reply;
    if (row === undefined) return null;
    const [
      collection,
      total,
      queued,
      running,
      stored,
      unchanged,
      dead,
      discarded,
      createdAt,
      updatedAt,
      retrying,
    ] = row.map((v) => (v === null ? null : String(v)));
    const counters = {
      total: Number(total),
      queued: Number(queued),
      running: Number(running),
      stored: Number(stored),
      unchanged: Number(unchanged),
      superseded: 0,
      dead: Number(dead),
      discarded: Number(discarded),
      cancelled: 0,
    };
    return {
      id: jobId,
      collection: collection ?? "",
      state: toJobState(counters),
      counts: toJobCounts(counters, Number(retrying)),
      createdAt: iso(createdAt),
      updatedAt: iso(updatedAt),
      failures: failures.map(([chunkId, lastError, attempts]) => ({
        chunkId: String(chunkId),
        state: "dead",
        reason: lastError === null || lastError === undefined ? "" : String(lastError),
        attempts: Number(attempts),
      })),
    };
  }

  async listChunks(
    jobId: string,
    request: PageRequest & { state?: ReceiptState },
  ): Promise<Page<ChunkReceipt>> {
    const limit = pageLimit(request.limit);
    const rows = (await this.call(
      "ragqListChunks",
      jobId,
      pageAfter(request.after),
      limit + 1,
      request.state ?? "",
    )) as Reply[][];
    return toPage(rows, limit, toReceipt);
  }

  async listDeadLetters(request: PageRequest & { jobId?: string }): Promise<Page<DeadLetter>> {
    const limit = pageLimit(request.limit);
    const rows = (await this.call(
      "ragqListDead",
      request.jobId ?? "",
      pageAfter(request.after),
      limit + 1,
    )) as Reply[][];
    return toPage(rows, limit, toDeadLetter);
  }

  async replayDeadLetters(selector: DeadLetterSelector): Promise<number> {
    return Number(await this.call("ragqReplay", this.nowArg(), ...selectorArgs(selector)));
  }

  async discardDeadLetters(selector: DeadLetterSelector): Promise<number> {
    return Number(await this.call("ragqDiscard", this.nowArg(), ...selectorArgs(selector)));
  }

  async maintain(): Promise<MaintenanceResult> {
    return { expiredJobs: 0, expiredDeadLetters: 0 };
  }

  async stats(): Promise<QueueStats> {
    const [pending, pendingTokens, running, dead] = await this.redis.hmget(
      `${this.prefix}counters`,
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

  /**
   * 0 also when the earliest ready chunks are held back behind an older version of the same chunk
   * still in flight, so a caller that gets 0 and then a null reservation should idle briefly.
   */
  async nextAvailableInMs(): Promise<number | null> {
    const reply = await this.call("ragqNextAvailable", this.nowArg());
    return reply === null ? null : Number(reply);
  }

  /** `appendonly` and `appendfsync` of the server, or null when CONFIG is not allowed (managed Redis). */
  async durability(): Promise<{ appendonly: string; appendfsync: string } | null> {
    try {
      const [, appendonly] = (await this.redis.config("GET", "appendonly")) as string[];
      const [, appendfsync] = (await this.redis.config("GET", "appendfsync")) as string[];
      return { appendonly: appendonly ?? "", appendfsync: appendfsync ?? "" };
    } catch {
      return null;
    }
  }

  async close(): Promise<void> {
    if (this.redis.status === "end") return;
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }

  /** '' lets the script read the Redis server's clock. */
  private nowArg(): string {
    return this.clock === undefined ? "" : String(Math.floor(this.clock()));
  }

  private call(name: QueueScriptName, ...args: Array<string | number>): Promise<unknown> {
    const fn = (this.redis as unknown as Record<QueueScriptName, ScriptCall>)[name];
    return fn.call(this.redis, this.prefix, ...args);
  }
}

/** Token estimates size reservations and the pending-token gauge, so keep them whole and non-negative. */
function normaliseTokens(estimate: number): number {
  return Number.isFinite(estimate) && estimate > 0 ? Math.ceil(estimate) : 0;
}

function selectorArgs(selector: DeadLetterSelector): Array<string | number> {
  if ("all" in selector) return ["all", ""];
  if ("jobId" in selector) return ["job", selector.jobId];
  return ["seqs", "", ...uniqueSeqs(selector.seqs)];
}

function uniqueSeqs(seqs: number[]): number[] {
  return [...new Set(seqs.filter((seq) => Number.isSafeInteger(seq) && seq > 0))];
}

function pageAfter(after: number | undefined): number {
  return after !== undefined && Number.isFinite(after) ? Math.floor(after) : 0;
}

function pageLimit(limit: number): number {
  return Number.isFinite(limit) ? Math.min(MAX_PAGE, Math.max(1, Math.floor(limit))) : MAX_PAGE;
}

/** Rows were read with limit + 1, so one more row than the page means there is a next page. */
function toPage<T extends { seq: number }>(
  rows: Reply[][],
  limit: number,
  map: (row: Reply[]) => T,
): Page<T> {
  const items = rows.slice(0, limit).map(map);
  const more = rows.length > limit;
  return { items, nextCursor: more ? (items[items.length - 1]?.seq ?? null) : null };
}

function str(value: Reply | undefined): string | null {
  return value === null || value === undefined ? null : String(value);
}

function num(value: Reply | undefined): number | null {
  return value === null || value === undefined ? null : Number(value);
}

function iso(ms: string | null | undefined): string {
  return new Date(Number(ms ?? 0)).toISOString();
}

function toQueuedChunk(row: Reply[]): QueuedChunk {
  const [seq, jobId, collection, chunkId, documentId, text, payload, est, attempts, overflow, overlap] = row;
  return {
    seq: Number(seq),
    version: Number(seq),
    jobId: String(jobId),
    collection: String(collection),
    chunkId: String(chunkId),
    documentId: str(documentId),
    text: String(text),
    payload: JSON.parse(String(payload)) as Payload,
    estimatedTokens: Number(est),
    attempts: Number(attempts),
    overflow: { policy: String(overflow) as QueuedOverflowPolicy, overlapTokens: Number(overlap) },
  };
}

function toReceipt(row: Reply[]): ChunkReceipt {
  const [seq, chunkId, state, attempts, tokens, truncated, windows, overflow, model, profile, lastError, at] =
    row;
  const lastErrorText = str(lastError);
  const retrying = state === "queued" && Number(attempts) > 0 && lastErrorText !== null;
  return {
    seq: Number(seq),
    chunkId: String(chunkId),
    state: retrying ? "failed" : (String(state) as ReceiptState),
    attempts: Number(attempts),
    tokens: num(tokens),
    truncatedTokens: num(truncated) ?? 0,
    windows: num(windows),
    overflow: String(overflow) as QueuedOverflowPolicy,
    model: str(model),
    profile: str(profile),
    lastError: lastErrorText,
    updatedAt: iso(str(at)),
  };
}

function toDeadLetter(row: Reply[]): DeadLetter {
  const [seq, jobId, collection, chunkId, lastError, attempts, deadAt, updatedAt] = row;
  return {
    seq: Number(seq),
    jobId: String(jobId),
    collection: String(collection),
    chunkId: String(chunkId),
    reason: str(lastError) ?? "",
    attempts: Number(attempts),
    deadAt: iso(str(deadAt) ?? str(updatedAt)),
  };
}
