import { AppError, ProcessingError } from "../../src/domain/errors.js";
import { pointId } from "../../src/domain/ids.js";
import type {
  ChunkReceipt,
  DeadLetter,
  DocumentFloor,
  Job,
  JobCounts,
  ModelInfo,
  Payload,
  PointFingerprint,
  QueuedChunk,
  SearchHit,
  VectorRecord,
} from "../../src/domain/types.js";
import type { Embedder, EmbedResult } from "../../src/embedder/embedder.js";
import type {
  ChunkOutcome,
  EnqueueRequest,
  EnqueueResult,
  FailRequest,
  JobQueue,
  QueueStats,
} from "../../src/queue/job-queue.js";
import { assertSameBinding } from "../../src/vector-store/binding-checks.js";
import type {
  ChunkWrite,
  ChunkWriteResult,
  CollectionDescription,
  VectorStore,
} from "../../src/vector-store/vector-store.js";

/**
 * In-memory stand-ins for the queue, the store and the embedder, enough for the HTTP app's routes
 * (test/unit/app.test.ts) and the ingest pipeline (test/unit/ingest-pipeline.test.ts over a real
 * SQLite queue, test/unit/ingest-pipeline-lifecycle.test.ts over memoryLeaseQueue): no model, no
 * child process. `down` makes every call fail the
 * way an unreachable backend does (a retryable ProcessingError), for the 503 paths.
 */

export const FAKE_MODEL: ModelInfo = {
  id: "fake/model",
  profile: "default",
  dimension: 4,
  maxTokens: 16,
  pooling: "mean",
  normalize: true,
  prefixes: { passage: "", query: "" },
  dtype: "fp32",
};

const unreachable = (what: string) =>
  new ProcessingError(`${what}: connect ECONNREFUSED 127.0.0.1:1`, { retryable: true, outage: true });

function zeroCounts(total: number): JobCounts {
  return {
    total,
    queued: total,
    running: 0,
    stored: 0,
    unchanged: 0,
    superseded: 0,
    failed: 0,
    dead: 0,
    discarded: 0,
    cancelled: 0,
  };
}

/** A queue that keeps accepted jobs in a Map and never runs them. */
export function memoryQueue(): JobQueue & { down: boolean; jobs: Map<string, EnqueueRequest> } {
  const jobs = new Map<string, EnqueueRequest>();
  const state = { down: false };
  const at = new Date(0).toISOString();
  const pending = () => [...jobs.values()].reduce((sum, job) => sum + job.chunks.length, 0);
  const check = () => {
    if (state.down) throw unreachable("the queue");
  };
  const job = (id: string): Job | null => {
    const request = jobs.get(id);
    if (!request) return null;
    return {
      id,
      collection: request.collection,
      state: "queued",
      counts: zeroCounts(request.chunks.length),
      createdAt: at,
      updatedAt: at,
      failures: [],
      replace: null,
    };
  };
  const notUsed = (name: string) => async (): Promise<never> => {
    throw new Error(`${name} is not used by the HTTP app`);
  };
  const queue: JobQueue = {
    async enqueue(request): Promise<EnqueueResult> {
      check();
      const id = request.jobId ?? `job-${jobs.size + 1}`;
      if (jobs.has(id)) return { accepted: true, jobId: id, count: request.chunks.length, duplicate: true };
      if (pending() + request.chunks.length > request.maxQueueSize) {
        return {
          accepted: false,
          reason: "queue_full",
          limit: "chunks",
          pending: pending(),
          pendingTokens: 0,
          maxQueueSize: request.maxQueueSize,
          maxQueueTokens: request.maxQueueTokens ?? Number.MAX_SAFE_INTEGER,
        };
      }
      jobs.set(id, request);
      return { accepted: true, jobId: id, count: request.chunks.length, duplicate: false };
    },
    async getJob(id) {
      check();
      return job(id);
    },
    async listChunks(id) {
      check();
      const request = jobs.get(id);
      const items: ChunkReceipt[] = (request?.chunks ?? []).map((chunk, index) => ({
        seq: index + 1,
        chunkId: chunk.chunkId,
        state: "queued",
        attempts: 0,
        tokens: null,
        truncatedTokens: 0,
        windows: null,
        overflow: chunk.overflow.policy,
        model: null,
        profile: null,
        lastError: null,
        updatedAt: at,
      }));
      return { items, nextCursor: null };
    },
    async listJobs() {
      check();
      return { items: [...jobs.keys()].map((id) => job(id)!), nextCursor: null };
    },
    async cancelJob(id) {
      check();
      return jobs.has(id) ? 0 : null;
    },
    async stats(): Promise<QueueStats> {
      check();
      return { pending: pending(), running: 0, dead: 0, pendingTokens: 0 };
    },
    async pendingInCollection(collection) {
      check();
      return [...jobs.values()]
        .filter((job) => job.collection === collection)
        .reduce((sum, job) => sum + job.chunks.length, 0);
    },
    async deleteDocument(): Promise<DocumentFloor> {
      check();
      return { version: 1, kind: "delete" };
    },
    async listDocuments() {
      check();
      return { documentIds: [], nextCursor: null };
    },
    async listDeadLetters() {
      check();
      return { items: [] as DeadLetter[], nextCursor: null };
    },
    async replayDeadLetters() {
      check();
      return 0;
    },
    async discardDeadLetters() {
      check();
      return 0;
    },
    async documentFloors() {
      return new Map();
    },
    reserve: notUsed("reserve"),
    renew: notUsed("renew"),
    ack: notUsed("ack"),
    fail: notUsed("fail"),
    release: notUsed("release"),
    pendingFinalizations: notUsed("pendingFinalizations"),
    completeFinalization: notUsed("completeFinalization"),
    maintain: notUsed("maintain"),
    nextAvailableInMs: async () => null,
    close: async () => {},
  };
  return Object.defineProperties(queue, {
    down: { get: () => state.down, set: (value: boolean) => (state.down = value), enumerable: true },
    jobs: { value: jobs, enumerable: true },
  }) as JobQueue & { down: boolean; jobs: Map<string, EnqueueRequest> };
}

/** One chunk in the lease queue: where it is in its life, and what happened to it. */
export interface LeasedEntry {
  chunk: QueuedChunk;
  state: "queued" | "leased" | "done" | "dead";
  lease: string | null;
  availableAt: number;
  outcome: ChunkOutcome | null;
  errors: string[];
}

/**
 * The worker side of a queue, in memory, for the ingest pipeline (test/unit/ingest-pipeline.test.ts):
 * `add` puts chunks in (seq order), `reserve` leases the available ones by seq within the request's
 * bounds, `ack`/`fail`/`release` act only on chunks the lease still holds (as the real queues do), a
 * failure counts an attempt and either delays a retry or dead-letters. `calls` records every lease
 * operation in order; `floors` are the documents' floors. The HTTP-side calls are not implemented.
 */
export function memoryLeaseQueue() {
  const entries = new Map<number, LeasedEntry>();
  const floors = new Map<string, Map<string, DocumentFloor>>();
  const calls: Array<
    | { op: "reserve"; lease: string; seqs: number[] }
    | { op: "ack"; lease: string; outcomes: ChunkOutcome[] }
    | { op: "fail"; lease: string; request: FailRequest }
    | { op: "release"; lease: string }
  > = [];
  let leases = 0;
  let nextSeq = 1;
  const held = (lease: string) =>
    [...entries.values()].filter((e) => e.state === "leased" && e.lease === lease);
  const notUsed = (name: string) => async (): Promise<never> => {
    throw new Error(`${name} is not used by the pipeline`);
  };
  const queue: JobQueue = {
    async reserve(request) {
      const now = Date.now();
      const picked: LeasedEntry[] = [];
      let tokens = 0;
      for (const entry of [...entries.values()].sort((a, b) => a.chunk.seq - b.chunk.seq)) {
        if (entry.state !== "queued" || entry.availableAt > now) continue;
        if (picked.length >= request.maxChunks) break;
        if (picked.length > 0 && tokens + entry.chunk.estimatedTokens > request.maxTokens) break;
        picked.push(entry);
        tokens += entry.chunk.estimatedTokens;
      }
      if (picked.length === 0) return null;
      leases += 1;
      const id = `lease-${leases}`;
      for (const entry of picked) Object.assign(entry, { state: "leased", lease: id });
      calls.push({ op: "reserve", lease: id, seqs: picked.map((e) => e.chunk.seq) });
      return {
        id,
        chunks: picked.map((e) => ({ ...e.chunk, attempts: e.chunk.attempts })),
        expiresAt: now + request.leaseMs,
      };
    },
    async renew(lease) {
      return held(lease).length > 0;
    },
    async ack(lease, outcomes) {
      calls.push({ op: "ack", lease, outcomes });
      const mine = new Set(held(lease).map((e) => e.chunk.seq));
      for (const outcome of outcomes) {
        const entry = entries.get(outcome.seq);
        if (entry && mine.has(outcome.seq)) Object.assign(entry, { state: "done", lease: null, outcome });
      }
    },
    async fail(lease, request) {
      calls.push({ op: "fail", lease, request });
      const mine = new Set(held(lease).map((e) => e.chunk.seq));
      // One instant for the whole call, as a queue's transaction has: the chunks come back together.
      const availableAt = Date.now() + request.retryDelayMs;
      for (const seq of request.seqs) {
        const entry = entries.get(seq);
        if (!entry || !mine.has(seq)) continue;
        entry.chunk = { ...entry.chunk, attempts: entry.chunk.attempts + 1 };
        entry.errors.push(request.error);
        entry.lease = null;
        if (entry.chunk.attempts >= request.maxAttempts) entry.state = "dead";
        else Object.assign(entry, { state: "queued", availableAt });
      }
    },
    async release(lease) {
      calls.push({ op: "release", lease });
      for (const entry of held(lease)) Object.assign(entry, { state: "queued", lease: null });
    },
    async documentFloors(collection, documentIds) {
      const known = floors.get(collection) ?? new Map<string, DocumentFloor>();
      return new Map(documentIds.flatMap((id) => (known.has(id) ? [[id, known.get(id)!] as const] : [])));
    },
    async pendingFinalizations() {
      return [];
    },
    async completeFinalization() {},
    async nextAvailableInMs() {
      const waiting = [...entries.values()].filter((e) => e.state === "queued").map((e) => e.availableAt);
      return waiting.length === 0 ? null : Math.max(0, Math.min(...waiting) - Date.now());
    },
    async close() {},
    enqueue: notUsed("enqueue"),
    getJob: notUsed("getJob"),
    listJobs: notUsed("listJobs"),
    cancelJob: notUsed("cancelJob"),
    deleteDocument: notUsed("deleteDocument"),
    listDocuments: notUsed("listDocuments"),
    listChunks: notUsed("listChunks"),
    listDeadLetters: notUsed("listDeadLetters"),
    replayDeadLetters: notUsed("replayDeadLetters"),
    discardDeadLetters: notUsed("discardDeadLetters"),
    stats: notUsed("stats"),
    pendingInCollection: notUsed("pendingInCollection"),
    maintain: notUsed("maintain"),
  };
  return {
    queue,
    entries,
    floors,
    calls,
    /** Queue these chunks (new seqs, version = seq unless given, attempts 0). */
    add(chunks: Array<Partial<QueuedChunk> & { chunkId: string; text: string }>): QueuedChunk[] {
      return chunks.map((partial) => {
        const seq = nextSeq++;
        const chunk: QueuedChunk = {
          documentId: null,
          payload: {},
          estimatedTokens: Math.ceil(partial.text.length / 4),
          overflow: { policy: "truncate", overlapTokens: 0 },
          version: seq,
          jobId: "job-1",
          collection: "docs",
          attempts: 0,
          ...partial,
          seq,
        };
        entries.set(seq, {
          chunk,
          state: "queued",
          lease: null,
          availableAt: 0,
          outcome: null,
          errors: [],
        });
        return chunk;
      });
    },
    /** True when no chunk is queued or leased. */
    idle(): boolean {
      return [...entries.values()].every((e) => e.state === "done" || e.state === "dead");
    },
  };
}

/** What the in-memory store holds for one chunk: its fingerprint point's fields and all its records. */
export interface StoredChunk {
  version: number;
  contentHash: string;
  payloadHash: string;
  payload: Payload;
  records: VectorRecord[];
}

export type MemoryStore = VectorStore & {
  down: boolean;
  hits: SearchHit[] | null;
  /** Collections ensured (or put here by a test), with their bindings. */
  collections: Map<string, CollectionDescription>;
  /** describeCollection calls: admission's binding cache is meant to keep this low. */
  describeCalls: number;
  /** What each chunk's points hold, by collection, then chunk id. */
  chunks: Map<string, Map<string, StoredChunk>>;
};

/**
 * A store holding each chunk's points in memory (by collection, then chunk id), with the version rule
 * of the VectorStore contract: a write applies only over an older version, a touch only over the same
 * content. Collections keep their model binding as the real stores do. Searches find nothing unless
 * `hits` is set.
 */
export function memoryStore(): MemoryStore {
  const state = { down: false, hits: null as SearchHit[] | null, describeCalls: 0 };
  const collections = new Map<string, CollectionDescription>();
  const chunks = new Map<string, Map<string, StoredChunk>>();
  const check = () => {
    if (state.down) throw unreachable("the vector store");
  };
  const collectionOf = (name: string) => {
    const found = chunks.get(name) ?? new Map<string, StoredChunk>();
    chunks.set(name, found);
    return found;
  };
  const apply = (collection: string, write: ChunkWrite): ChunkWriteResult => {
    const held = collectionOf(collection);
    const known = held.get(write.chunkId);
    if (known && known.version > write.version) return "superseded";
    if (write.kind === "touch") {
      if (!known || known.contentHash !== write.contentHash) return "changed";
      const payload = write.payload ?? { payload: known.payload, payloadHash: known.payloadHash };
      held.set(write.chunkId, { ...known, version: write.version, ...payload });
      return "written";
    }
    const fingerprint = write.records.find((r) => r.windowIndex === null || r.windowIndex === 0);
    if (!fingerprint) throw new Error(`write of ${write.chunkId} has no fingerprint point`);
    held.set(write.chunkId, {
      version: write.version,
      contentHash: fingerprint.contentHash,
      payloadHash: fingerprint.payloadHash,
      payload: fingerprint.payload,
      records: write.records,
    });
    return "written";
  };
  const store: VectorStore = {
    async ensureCollection(spec) {
      check();
      const existing = collections.get(spec.name);
      if (existing === undefined) {
        const { name, dimension, distance } = spec;
        collections.set(name, { name, dimension, distance, binding: spec.binding ?? null });
        return;
      }
      if (existing.binding === null && spec.binding) existing.binding = { ...spec.binding, adopted: true };
      assertSameBinding(spec.name, existing.binding, spec.binding);
    },
    async describeCollection(name) {
      check();
      state.describeCalls += 1;
      const found = collections.get(name);
      return found === undefined ? null : structuredClone(found);
    },
    async adoptCollection(name, binding) {
      check();
      const found = collections.get(name);
      if (found === undefined) throw new AppError("collection_not_found", `no collection ${name}`);
      found.binding ??= { ...binding, adopted: true };
      return found.binding;
    },
    async setAlias() {
      throw new Error("setAlias is not used by the HTTP app");
    },
    async writeChunks(collection, writes) {
      check();
      return writes.map((write) => apply(collection, write));
    },
    async fingerprints(collection, ids) {
      check();
      const wanted = new Set(ids);
      const found = new Map<string, PointFingerprint>();
      for (const [chunkId, chunk] of chunks.get(collection) ?? []) {
        const id = pointId(collection, chunkId);
        if (wanted.has(id)) {
          found.set(id, {
            contentHash: chunk.contentHash,
            payloadHash: chunk.payloadHash,
            version: chunk.version,
          });
        }
      }
      return found;
    },
    async deleteDocument() {
      check();
      return { deleted: 0, chunkIds: [] };
    },
    async deleteChunkVersions() {
      check();
      return 0;
    },
    async search() {
      check();
      return state.hits ?? [];
    },
    async parentTexts() {
      check();
      return new Map();
    },
    async count(collection) {
      check();
      return [...(chunks.get(collection)?.values() ?? [])].reduce((sum, c) => sum + c.records.length, 0);
    },
    async ping() {
      check();
    },
    async close() {},
  };
  return Object.defineProperties(store, {
    down: { get: () => state.down, set: (value: boolean) => (state.down = value), enumerable: true },
    hits: {
      get: () => state.hits,
      set: (value: SearchHit[] | null) => (state.hits = value),
      enumerable: true,
    },
    chunks: { value: chunks, enumerable: true },
    collections: { value: collections, enumerable: true },
    describeCalls: { get: () => state.describeCalls, enumerable: true },
  }) as MemoryStore;
}

/** An embedder whose vectors are the text's length, spread over FAKE_MODEL's four dimensions. */
export function fakeEmbedder(): Embedder {
  const vector = (text: string) => Float32Array.from([text.length, 1, 0, 0]);
  return {
    async load() {
      return FAKE_MODEL;
    },
    info: () => FAKE_MODEL,
    async embed(texts): Promise<EmbedResult> {
      return {
        vectors: texts.map(vector),
        tokens: texts.map((text) => Math.ceil(text.length / 4)),
        truncatedTokens: texts.map(() => 0),
        windows: texts.map(() => null),
      };
    },
    async countTokens(texts) {
      return texts.map((text) => Math.ceil(text.length / 4));
    },
    async close() {},
  };
}
