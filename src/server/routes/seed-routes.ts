import { modelFingerprint } from "../../domain/model-binding.js";
import { servedModelName } from "../../domain/model-names.js";
import type { Payload } from "../../domain/types.js";
import {
  IngestHeaders,
  type SeedChunk,
  SeedEmbedBody,
  SeedEmbedQuery,
  SeedStatusQuery,
} from "../../wire/requests.js";
import { ModelDescription, SeedEmbedAccepted, SeedStatus } from "../../wire/responses.js";
import { type ClientChunk, newChunk } from "../admission.js";
import { type App, type AppDeps, overflowFor, requireModel } from "../app-deps.js";
import { queueStorage } from "../queue-storage.js";
import { accepts, answers } from "../route-responses.js";

/**
 * The API of the system we grow from, kept so existing clients work unchanged:
 * text = name + " | " + contents; payload {docId, itemSequence, name, contents, meta};
 * the document (for delete-by-document) is the item sequence.
 */
export function seedChunk(chunk: SeedChunk): ClientChunk {
  const payload: Payload = {
    docId: chunk.chunk_id,
    itemSequence: chunk.item_sequence,
    name: chunk.name,
    contents: chunk.contents,
    meta: chunk.meta as Payload | null,
  };
  const text = chunk.contents.trim() === "" ? "" : `${chunk.name} | ${chunk.contents}`;
  return newChunk(String(chunk.chunk_id), text, String(chunk.item_sequence), payload);
}

export function registerSeedRoutes(app: App, deps: AppDeps): void {
  app.post(
    "/test/embed",
    {
      schema: {
        summary: "Ingest chunks (the seed API: a bare array, or {chunks: [...]})",
        tags: ["seed API"],
        body: SeedEmbedBody,
        querystring: SeedEmbedQuery,
        headers: IngestHeaders,
        response: accepts(SeedEmbedAccepted),
      },
    },
    async (request, reply) => {
      const chunks = Array.isArray(request.body) ? request.body : request.body.chunks;
      const clientChunks = chunks.map(seedChunk);
      const admitted = await deps.admission.admit(
        deps.limits.seedCollection,
        clientChunks,
        overflowFor(deps, request.query.overflow, request.query.overlap_tokens),
        {
          idempotencyKey: request.headers["idempotency-key"],
          ...(request.query.replace_documents
            ? { replaceDocuments: [...new Set(clientChunks.map((c) => c.documentId ?? ""))] }
            : {}),
        },
      );
      deps.onEnqueued();
      if (admitted.duplicate) reply.header("idempotent-replayed", "true");
      return reply
        .status(202)
        .send({ status: "accepted" as const, count: admitted.count, job_id: admitted.jobId });
    },
  );

  app.get(
    "/test/status",
    {
      schema: {
        summary: "Whether the queue has room (the seed API)",
        tags: ["seed API"],
        querystring: SeedStatusQuery,
        response: answers(SeedStatus),
      },
    },
    async (request) => {
      const threshold = request.query.threshold ?? 0.7;
      const stats = await deps.queue.stats();
      return {
        current_task_queue_size: stats.pending,
        max_queue_size: deps.limits.maxQueueSize,
        // Seed clients poll this before sending: a queue out of disk space is not available either.
        queue_available: stats.pending < threshold * deps.limits.maxQueueSize && queueStorage(deps).ok,
        threshold_ratio: threshold,
      };
    },
  );

  app.get(
    "/model-info",
    {
      schema: {
        summary: "The loaded model (the seed API)",
        tags: ["seed API"],
        response: answers(ModelDescription),
      },
    },
    async () => {
      const model = requireModel(deps);
      return {
        model_name: servedModelName(model),
        // Where the weights were loaded from (hub id or directory), next to the name clients use.
        model_source: model.id,
        profile: model.profile,
        // How the profile was recognised: a name, the model's shape, or nothing (default profile).
        profile_source: model.profileSource ?? null,
        dimension: model.dimension,
        max_tokens: model.maxTokens,
        pooling: model.pooling,
        normalize: model.normalize,
        dtype: model.dtype,
        prefixes: model.prefixes,
        weights_sha256: model.weightsSha256 ?? null,
        fingerprint: modelFingerprint(model),
        distance: deps.limits.distance,
        // Who counts tokens against max_tokens: the model's tokenizer, or (remote, none loaded) an estimate.
        token_counter: model.remote?.tokenCounter ?? "tokenizer",
        ...(model.remote && {
          remote: { protocol: model.remote.protocol, url: model.remote.url, model: model.remote.model },
        }),
      };
    },
  );
}
