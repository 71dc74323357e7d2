import { SQLITE_DURABILITY } from "../../domain/durability.js";
import { AppError } from "../../domain/errors.js";
import { servedModelName } from "../../domain/model-names.js";
import type { Payload, SearchHit } from "../../domain/types.js";
import type { ParentRef } from "../../vector-store/vector-store.js";
import {
  CollectionParams,
  DocumentListQuery,
  DocumentParams,
  IngestHeaders,
  JobParams,
  JobQuery,
  type NativeChunk,
  NativeIngestBody,
  SearchBody,
} from "../../wire/requests.js";
import {
  CollectionInfo,
  DocumentDeleted,
  DocumentList,
  DocumentReplaceAccepted,
  IngestAccepted,
  Job,
  JobCancelled,
  SearchResult,
  ServerStatus,
} from "../../wire/responses.js";
import { type ClientChunk, newChunk } from "../admission.js";
import { type App, type AppDeps, overflowFor, queryModel, rosterOf, servedModel } from "../app-deps.js";
import { collectionBody } from "../collection-bodies.js";
import { jobBody } from "../job-bodies.js";
import { nextVersion } from "../next-version.js";
import { queueStorage } from "../queue-storage.js";
import { accepts, answers } from "../route-responses.js";

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
    {
      schema: {
        summary: "Ingest chunks into a collection (queued durably, embedded in the background)",
        tags: ["ingest"],
        params: CollectionParams,
        body: NativeIngestBody,
        headers: IngestHeaders,
        response: accepts(IngestAccepted),
      },
    },
    async (request, reply) => {
      const { chunks, overflow, overlap_tokens: overlapTokens, model } = request.body;
      const admitted = await deps.admission.admit(
        request.params.collection,
        chunks.map(nativeChunk),
        overflowFor(deps, overflow, overlapTokens),
        {
          idempotencyKey: request.headers["idempotency-key"],
          ...(model !== undefined ? { model: servedModel(deps, model) } : {}),
        },
      );
      deps.onEnqueued();
      if (admitted.duplicate) reply.header("idempotent-replayed", "true");
      return reply.status(202).send({ job_id: admitted.jobId, status: "accepted", count: admitted.count });
    },
  );

  app.get(
    "/v1/jobs/:id",
    {
      schema: {
        summary: "A job: its counts, its failures and a page of its chunks",
        tags: ["jobs"],
        params: JobParams,
        querystring: JobQuery,
        response: answers(Job),
      },
    },
    async (request) => {
      const job = await deps.queue.getJob(request.params.id);
      if (!job) throw new AppError("job_not_found", `No job ${request.params.id}`);
      const { state, after, limit = 100 } = request.query;
      return jobBody(job, await deps.queue.listChunks(job.id, { state, after, limit }));
    },
  );

  app.delete(
    "/v1/jobs/:id",
    {
      schema: {
        summary: "Cancel a job's chunks that have not run yet",
        tags: ["jobs"],
        params: JobParams,
        response: answers(JobCancelled),
      },
    },
    async (request) => {
      const cancelled = await deps.queue.cancelJob(request.params.id);
      if (cancelled === null) throw new AppError("job_not_found", `No job ${request.params.id}`);
      const job = await deps.queue.getJob(request.params.id);
      return {
        id: request.params.id,
        cancelled,
        state: job?.state ?? "done",
        counts: job?.counts ?? null,
      };
    },
  );

  app.get(
    "/v1/status",
    {
      schema: {
        summary: "Queue depth, backends, throughput, model, embedder and the queue's durability",
        tags: ["status"],
        response: answers(ServerStatus),
      },
    },
    async () => {
      const stats = await deps.queue.stats();
      const storage = queueStorage(deps);
      const rates = deps.throughput.rates();
      const model = deps.model();
      return {
        queue: {
          pending_chunks: stats.pending,
          running_chunks: stats.running,
          pending_tokens_estimate: stats.pendingTokens,
          max_queue_size: deps.limits.maxQueueSize,
          available: stats.pending < deps.limits.maxQueueSize && storage.ok,
          storage,
        },
        // What requests have seen of them lately (GET /ready probes them).
        backends: { queue: deps.health.report("queue"), store: deps.health.report("store") },
        dead_letters: stats.dead,
        throughput: {
          chunks_per_second: round(rates.chunksPerSecond),
          tokens_per_second: round(rates.tokensPerSecond),
        },
        estimated_drain_seconds:
          rates.chunksPerSecond > 0 ? Math.ceil(stats.pending / rates.chunksPerSecond) : null,
        model: model
          ? { id: model.id, name: servedModelName(model), dimension: model.dimension, ready: true as const }
          : { ready: false as const },
        embedder: embedderBody(deps),
        durability: snakeCaseKeys(deps.durability?.() ?? SQLITE_DURABILITY) as ServerStatus["durability"],
      };
    },
  );

  app.post(
    "/v1/collections/:collection/search",
    {
      schema: {
        summary: "Search a collection with a text query",
        tags: ["search"],
        params: CollectionParams,
        body: SearchBody,
        response: answers(SearchResult),
      },
    },
    async (request) => {
      const { query, top_k: topK = 10, filter, include_parent_text: withParents = false } = request.body;
      const { collection } = request.params;
      const { embedder } = await queryModel(deps, collection);
      const embedded = await embedder.embed([query], "query");
      const vector = embedded.vectors[0];
      if (!vector) throw new AppError("internal_error", "The embedder returned no vector for the query");
      const { hits, pending } = await searchOrPending(deps, collection, vector, topK, filter);
      const parents = withParents ? parentRefs(hits) : new Map<string, ParentRef>();
      const texts =
        parents.size > 0 ? await deps.store.parentTexts(collection, [...parents.values()]) : new Map();
      return {
        hits: hits.map((hit) => {
          const parent = windowParent(hit.payload);
          return {
            id: hit.chunkId,
            point_id: hit.id,
            score: hit.score,
            payload: hit.payload,
            ...(withParents && parent !== undefined
              ? { parent_text: texts.get(parent.chunkId) ?? null }
              : {}),
          };
        }),
        ...(pending === undefined ? {} : { pending }),
      };
    },
  );

  app.get(
    "/v1/collections/:collection",
    {
      schema: {
        summary: "A collection: its shape, its point count and the embedding profile it is bound to",
        tags: ["collections"],
        params: CollectionParams,
        response: answers(CollectionInfo),
      },
    },
    async (request) => {
      const { collection } = request.params;
      const description = await deps.store.describeCollection(collection);
      if (description === null) {
        throw new AppError("collection_not_found", `Collection "${collection}" does not exist`, {
          details: { collection },
        });
      }
      const bound = description.binding
        ? rosterOf(deps).byFingerprint(description.binding.fingerprint)
        : undefined;
      const body = collectionBody(
        description,
        await deps.store.count(collection),
        bound?.info ?? deps.model(),
      );
      if (deps.store.resolveAlias === undefined) return body;
      const next = await nextVersion(deps.store, collection);
      return {
        ...body,
        active_version: await deps.store.resolveAlias(collection),
        next_version: next?.name ?? null,
      };
    },
  );

  app.get(
    "/v1/collections/:collection/documents",
    {
      schema: {
        summary: "A page of the collection's document ids",
        tags: ["documents"],
        params: CollectionParams,
        querystring: DocumentListQuery,
        response: answers(DocumentList),
      },
    },
    async (request) => {
      const { after, limit = 1000 } = request.query;
      const page = await deps.queue.listDocuments(request.params.collection, {
        limit,
        ...(after === undefined ? {} : { after }),
      });
      return { documents: page.documentIds, next_cursor: page.nextCursor };
    },
  );

  app.put(
    "/v1/collections/:collection/documents/:document_id",
    {
      schema: {
        summary: "Replace a document's chunks (unchanged ones are not embedded again)",
        tags: ["documents"],
        params: DocumentParams,
        body: NativeIngestBody,
        headers: IngestHeaders,
        response: accepts(DocumentReplaceAccepted),
      },
    },
    async (request, reply) => {
      const { collection, document_id: documentId } = request.params;
      const { chunks, overflow, overlap_tokens: overlapTokens, model } = request.body;
      if (chunks.length === 0) {
        throw new AppError(
          "empty_batch",
          `A document is replaced by its chunks; to remove document ${documentId}, DELETE it`,
          { details: { document_id: documentId } },
        );
      }
      const others = chunks.filter(
        (c) => c.document_id !== undefined && c.document_id !== null && String(c.document_id) !== documentId,
      );
      if (others.length > 0) {
        throw new AppError("invalid_request", `Every chunk of document ${documentId} must belong to it`, {
          details: { document_id: documentId, chunk_ids: others.slice(0, 100).map((c) => String(c.id)) },
        });
      }
      const admitted = await deps.admission.admit(
        collection,
        chunks.map((c) => nativeChunk({ ...c, document_id: documentId })),
        overflowFor(deps, overflow, overlapTokens),
        {
          idempotencyKey: request.headers["idempotency-key"],
          replaceDocuments: [documentId],
          ...(model !== undefined ? { model: servedModel(deps, model) } : {}),
        },
      );
      deps.onEnqueued();
      if (admitted.duplicate) reply.header("idempotent-replayed", "true");
      return reply.status(202).send({
        job_id: admitted.jobId,
        status: "accepted",
        count: admitted.count,
        document_id: documentId,
      });
    },
  );

  app.delete(
    "/v1/collections/:collection/documents/:document_id",
    {
      schema: {
        summary: "Delete a document: its stored points, and its chunks still queued",
        tags: ["documents"],
        params: DocumentParams,
        response: answers(DocumentDeleted),
      },
    },
    async (request) => {
      const { collection, document_id: documentId } = request.params;
      // The floor first: chunks of the document accepted before it are cancelled (queued) or
      // undone (running), then what is stored goes.
      const floor = await deps.queue.deleteDocument(collection, documentId);
      const deletion = await deps.store.deleteDocument(collection, documentId, floor.version);
      // A re-embed in progress copies the old version's chunks into the next one: the document goes
      // there too (its queued copies are cancelled), or it would be back after the cutover.
      const next = await nextVersion(deps.store, collection);
      if (next !== null) {
        const nextFloor = await deps.queue.deleteDocument(next.name, documentId);
        await deps.store.deleteDocument(next.name, documentId, nextFloor.version);
      }
      return { document_id: documentId, deleted: deletion.deleted, chunk_ids: deletion.chunkIds };
    },
  );
}

/**
 * Right after an ingest nothing may be stored yet: the collection may not even exist in the store.
 * Such a collection is searched as empty, with how many of its chunks are still queued, rather than
 * missing (404); a collection never ingested stays 404. An empty result says the same when chunks
 * are pending (they may be the ones sought).
 */
async function searchOrPending(
  deps: AppDeps,
  collection: string,
  vector: Float32Array,
  topK: number,
  filter: SearchBody["filter"],
): Promise<{ hits: SearchHit[]; pending?: number }> {
  let hits: SearchHit[];
  try {
    hits = await deps.store.search(collection, vector, topK, filter);
  } catch (error) {
    if (!(error instanceof AppError) || error.code !== "collection_not_found") throw error;
    const pending = await deps.queue.pendingInCollection(collection);
    if (pending === 0) throw error;
    return { hits: [], pending };
  }
  if (hits.length > 0) return { hits };
  // Only a hint here: the store answered, so a queue that cannot be asked (recorded in /ready and
  // /v1/status) does not turn the search into an error.
  const pending = await deps.queue.pendingInCollection(collection).catch(() => 0);
  return pending > 0 ? { hits, pending } : { hits };
}

/** The split chunk a hit is a window of (its payload names it), or undefined for a whole chunk. */
function windowParent(payload: Payload): ParentRef | undefined {
  const { parent_chunk_id: chunkId, window_count: windows } = payload;
  return typeof chunkId === "string" && typeof windows === "number" ? { chunkId, windows } : undefined;
}

function parentRefs(hits: SearchHit[]): Map<string, ParentRef> {
  const parents = new Map<string, ParentRef>();
  for (const hit of hits) {
    const parent = windowParent(hit.payload);
    if (parent !== undefined) parents.set(parent.chunkId, parent);
  }
  return parents;
}

/** The engine behind the embedder: a remote one says whether it answers and, if not, why and since when. */
function embedderBody(deps: AppDeps): ServerStatus["embedder"] {
  const status = deps.embedder.status?.();
  if (!status) return { engine: "local" };
  const { details, ...health } = status;
  return snakeCaseKeys({ ...health, ...details }) as ServerStatus["embedder"];
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
