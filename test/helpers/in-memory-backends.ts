import { AppError, ProcessingError } from "../../src/domain/errors.js";
import type {
  ChunkReceipt,
  DeadLetter,
  DocumentFloor,
  Job,
  JobCounts,
  ModelInfo,
  SearchHit,
} from "../../src/domain/types.js";
import type { Embedder, EmbedResult } from "../../src/embedder/embedder.js";
import type { EnqueueRequest, EnqueueResult, JobQueue, QueueStats } from "../../src/queue/job-queue.js";
import { assertSameBinding } from "../../src/vector-store/binding-checks.js";
import type { CollectionDescription, VectorStore } from "../../src/vector-store/vector-store.js";

/**
 * In-memory stand-ins for the queue, the store and the embedder, enough for the HTTP app's routes
 * (test/unit/app.test.ts) and for the pipeline over a real queue (test/unit/ingest-pipeline.test.ts):
 * no model, no child process. `down` makes every call fail the
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

export type MemoryStore = VectorStore & {
  down: boolean;
  hits: SearchHit[] | null;
  /** Collections ensured (or put here by a test), with their bindings. */
  collections: Map<string, CollectionDescription>;
  /** describeCollection calls: admission's binding cache is meant to keep this low. */
  describeCalls: number;
};

/** A store that holds no points: every search finds no collection, unless `hits` is set. */
export function memoryStore(): MemoryStore {
  const state = { down: false, hits: null as SearchHit[] | null, describeCalls: 0 };
  const collections = new Map<string, CollectionDescription>();
  const check = () => {
    if (state.down) throw unreachable("the vector store");
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
    async writeChunks(_collection, writes) {
      check();
      return writes.map(() => "written" as const);
    },
    async fingerprints() {
      check();
      return new Map();
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
    async count() {
      check();
      return 0;
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
