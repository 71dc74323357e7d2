/**
 * How the BullMQ queue's records live in Redis and read back: a chunk's job data, its receipt, a
 * transition entry for the accounting scripts, BullMQ job ids, and the job meta hash → JobSummary.
 * Pure: no connection.
 */
import type { Job as BullJob } from "bullmq";
import type {
  ChunkReceipt,
  DocumentFloor,
  DocumentReplacement,
  Payload,
  QueuedChunk,
  QueuedOverflowPolicy,
} from "../../domain/types.js";
import { toJobCounts, toJobState } from "../job-counts.js";
import type { JobSummary } from "../job-queue.js";
import { CODE_STATES, type ReceiptCode } from "./accounting-scripts.js";

/** What a chunk's BullMQ job carries. Short keys: the data is kept once per queued chunk. */
export interface ChunkData {
  /** Product job id, and the chunk's index in it. */
  j: string;
  i: number;
  /** Collection, chunk id, document id, text, payload. */
  c: string;
  k: string;
  d: string | null;
  t: string;
  p: Payload;
  /** Estimated tokens, overflow policy, overlap tokens, version. */
  e: number;
  o: QueuedOverflowPolicy;
  l: number;
  v: number;
}

export interface Receipt {
  s: ReceiptCode;
  c: string;
  e: number;
  o: QueuedOverflowPolicy;
  a?: number;
  k?: number;
  tr?: number;
  w?: number;
  m?: string;
  pr?: string;
  er?: string;
  t: number;
  da?: number;
}

export interface Entry {
  jobId: string;
  index: number;
  to: ReceiptCode;
  allowed: string;
  /** 0: no lock check, 1: the lock must be ours, 2: the lock must be gone. */
  lockMode: 0 | 1 | 2;
  seq: number;
  /** Receipt fields to set; null deletes one (e.g. the last error after a replay). */
  fields: { [K in keyof Omit<Receipt, "s" | "t">]?: Receipt[K] | null } | null;
}

export type Reply = string | number | null | Reply[];

/** BullMQ job id of chunk `index` of a job: zero-padded so equal priorities keep chunk order. */
export function bullJobId(jobId: string, index: number): string {
  return `${jobId}.${String(index).padStart(6, "0")}`;
}

export function parseBullJobId(bullId: string): { jobId: string; index: number } {
  const dot = bullId.lastIndexOf(".");
  return { jobId: bullId.slice(0, dot), index: Number(bullId.slice(dot + 1)) };
}

export function parseFloor(value: string | null): DocumentFloor | null {
  const match = value === null ? null : /^(\d+):(replace|delete)$/.exec(value);
  return match ? { version: Number(match[1]), kind: match[2] as DocumentFloor["kind"] } : null;
}

export function toReplacement(meta: Record<string, string>): DocumentReplacement | null {
  if (meta.docs === undefined) return null;
  return {
    documents: JSON.parse(meta.docs) as string[],
    finalized: meta.fin === "1",
    deletedPoints: Number(meta.deleted ?? 0),
    deletedChunkIds: meta.deletedIds === undefined ? [] : (JSON.parse(meta.deletedIds) as string[]),
  };
}

export function toJobSummary(jobId: string, meta: Record<string, string>): JobSummary {
  const n = (field: string) => Number(meta[field] ?? 0);
  const counters = {
    total: n("total"),
    queued: n("queued") + n("failed"),
    running: n("running"),
    stored: n("stored"),
    unchanged: n("unchanged"),
    superseded: n("superseded"),
    dead: n("dead"),
    discarded: n("discarded"),
    cancelled: n("cancelled"),
  };
  return {
    id: jobId,
    collection: meta.collection ?? "",
    state: toJobState(counters),
    counts: toJobCounts(counters, n("failed")),
    createdAt: new Date(n("created")).toISOString(),
    updatedAt: new Date(n("updated")).toISOString(),
  };
}

export function toQueuedChunk(job: BullJob<ChunkData>): QueuedChunk {
  const d = job.data;
  return {
    seq: d.v,
    version: d.v,
    jobId: d.j,
    collection: d.c,
    chunkId: d.k,
    documentId: d.d,
    text: d.t,
    payload: d.p,
    estimatedTokens: d.e,
    attempts: job.attemptsMade,
    overflow: { policy: d.o, overlapTokens: d.l },
  };
}

export function toReceipt(r: Receipt, seq: number): ChunkReceipt {
  return {
    seq,
    chunkId: r.c,
    state: CODE_STATES[r.s],
    attempts: r.a ?? 0,
    tokens: r.k ?? null,
    truncatedTokens: r.tr ?? 0,
    windows: r.w ?? null,
    overflow: r.o,
    model: r.m ?? null,
    profile: r.pr ?? null,
    lastError: r.er ?? null,
    updatedAt: new Date(r.t).toISOString(),
  };
}

export function pairs(reply: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < reply.length; i += 2) out.push([reply[i] ?? "", reply[i + 1] ?? ""]);
  return out;
}

/**
 * Where the queue's own keys live beside BullMQ's, all under one prefix (`<prefix>:q:...`, one hash
 * tag, so one Redis Cluster slot). Written once here for every part of the adapter.
 */
export class KeyLayout {
  constructor(private readonly prefix: string) {}

  /** One of the queue's own keys: indexes, counters, scripts' state. */
  queue(name: string): string {
    return `${this.prefix}:q:${name}`;
  }

  /** A job's keys: its meta hash, its receipts (by chunk index) and its dead letters. */
  job(jobId: string): { job: string; receipts: string; jobDead: string } {
    const job = `${this.prefix}:q:job:${jobId}`;
    return { job, receipts: `${job}:r`, jobDead: `${job}:d` };
  }

  /** A collection's document ids (a sorted set of equal scores: pages in id order). */
  documents(collection: string): string {
    return `${this.prefix}:q:docs:${encodeURIComponent(collection)}`;
  }

  /** A document's floor ("version:kind"); kept as long as an older chunk of it may still arrive. */
  floor(collection: string, documentId: string): string {
    return `${this.prefix}:q:floor:${encodeURIComponent(collection)}:${encodeURIComponent(documentId)}`;
  }
}
