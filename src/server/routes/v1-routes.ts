import { SQLITE_DURABILITY } from "../../domain/durability.js";
import { AppError } from "../../domain/errors.js";
import type { ChunkReceipt, Payload } from "../../domain/types.js";
import { type ClientChunk, newChunk } from "../admission.js";
import type { App, AppDeps } from "../app.js";
import { overflowFor, requireModel } from "../app.js";
import {
  CollectionParams,
  DocumentParams,
  IngestHeaders,
  JobParams,
  JobQuery,
  type NativeChunk,
  NativeIngestBody,
  SearchBody,
} from "../schemas.js";

/** Native chunk → queue entry; the payload is what search returns. */
export function nativeChunk(chunk: NativeChunk): ClientChunk {
  const documentId =
    chunk.document_id === undefined || chunk.document_id === null ? null : String(chunk.document_id);
  const payload: Payload = {
    chunk_id: String(chunk.id),
    document_id: documentId,
    text: chunk.text,
    metadata: (chunk.metadata ?? null) as Payload | null,
  };
  return newChunk(String(chunk.id), chunk.text, documentId, payload);
}

export function registerV1Routes(app: App, deps: AppDeps): void {
  app.post(
    "/v1/collections/:collection/chunks",
    { schema: { params: CollectionParams, body: NativeIngestBody, headers: IngestHeaders } },
    async (request, reply) => {
      const { chunks, overflow, overlap_tokens: overlapTokens } = request.body;
      const admitted = await deps.admission.admit(
        request.params.collection,
        chunks.map(nativeChunk),
        overflowFor(deps, overflow, overlapTokens),
        { idempotencyKey: request.headers["idempotency-key"] },
      );
      deps.onEnqueued();
      if (admitted.duplicate) reply.header("idempotent-replayed", "true");
      return reply.status(202).send({ job_id: admitted.jobId, status: "accepted", count: admitted.count });
    },
  );

  app.get("/v1/jobs/:id", { schema: { params: JobParams, querystring: JobQuery } }, async (request) => {
    const job = await deps.queue.getJob(request.params.id);
    if (!job) throw new AppError("job_not_found", `No job ${request.params.id}`);
    const { state, after, limit = 100 } = request.query;
    const page = await deps.queue.listChunks(job.id, { state, after, limit });
    return {
      id: job.id,
      collection: job.collection,
      state: job.state,
      counts: job.counts,
      created_at: job.createdAt,
      updated_at: job.updatedAt,
      failures: job.failures.map((f) => ({
        chunk_id: f.chunkId,
        state: f.state,
        reason: f.reason,
        attempts: f.attempts,
      })),
      chunks: page.items.map(receiptBody),
      next_cursor: page.nextCursor,
    };
  });

  app.get("/v1/status", async () => {
    const stats = await deps.queue.stats();
    const rates = deps.throughput.rates();
    const model = deps.model();
    return {
      queue: {
        pending_chunks: stats.pending,
        running_chunks: stats.running,
        pending_tokens_estimate: stats.pendingTokens,
        max_queue_size: deps.limits.maxQueueSize,
        available: stats.pending < deps.limits.maxQueueSize,
      },
      dead_letters: stats.dead,
      throughput: {
        chunks_per_second: round(rates.chunksPerSecond),
        tokens_per_second: round(rates.tokensPerSecond),
      },
      estimated_drain_seconds:
        rates.chunksPerSecond > 0 ? Math.ceil(stats.pending / rates.chunksPerSecond) : null,
      model: model ? { id: model.id, dimension: model.dimension, ready: true } : { ready: false },
      embedder: embedderBody(deps),
      durability: snakeCaseKeys(deps.durability?.() ?? SQLITE_DURABILITY),
    };
  });

  app.post(
    "/v1/collections/:collection/search",
    { schema: { params: CollectionParams, body: SearchBody } },
    async (request) => {
      requireModel(deps);
      const { query, top_k: topK = 10, filter } = request.body;
      const embedded = await deps.embedder.embed([query], "query");
      const vector = embedded.vectors[0];
      if (!vector) throw new AppError("internal_error", "The embedder returned no vector for the query");
      const hits = await deps.store.search(request.params.collection, vector, topK, filter);
      return {
        hits: hits.map((hit) => ({
          id: hit.chunkId,
          point_id: hit.id,
          score: hit.score,
          payload: hit.payload,
        })),
      };
    },
  );

  app.delete(
    "/v1/collections/:collection/documents/:document_id",
    { schema: { params: DocumentParams } },
    async (request) => {
      const deleted = await deps.store.deleteByDocument(
        request.params.collection,
        request.params.document_id,
      );
      return { deleted };
    },
  );
}

/** The engine behind the embedder: a remote one says whether it answers and, if not, why and since when. */
function embedderBody(deps: AppDeps): unknown {
  const status = deps.embedder.status?.();
  if (!status) return { engine: "local" };
  const { details, ...health } = status;
  return snakeCaseKeys({ ...health, ...details });
}

/** camelCase report fields → the API's snake_case (`maxmemoryPolicy` → `maxmemory_policy`), nested too. */
function snakeCaseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(snakeCaseKeys);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, field]) => [
      key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`),
      snakeCaseKeys(field),
    ]),
  );
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

export function receiptBody(receipt: ChunkReceipt) {
  return {
    id: receipt.seq,
    chunk_id: receipt.chunkId,
    state: receipt.state,
    attempts: receipt.attempts,
    tokens: receipt.tokens,
    truncated: receipt.truncatedTokens > 0,
    truncated_tokens: receipt.truncatedTokens,
    split: receipt.windows !== null && receipt.windows > 1,
    windows: receipt.windows,
    overflow: receipt.overflow,
    model: receipt.model,
    profile: receipt.profile,
    last_error: receipt.lastError,
    updated_at: receipt.updatedAt,
  };
}
