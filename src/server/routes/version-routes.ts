import { setTimeout as sleep } from "node:timers/promises";
import { logicalName, versionName, versionOf } from "../../domain/collection-versions.js";
import { AppError } from "../../domain/errors.js";
import { idempotentJobId } from "../../domain/ids.js";
import type { JobCounts } from "../../domain/job-counts.js";
import { bindingFor, modelFingerprint, modelMismatch } from "../../domain/model-binding.js";
import { servedModelName } from "../../domain/model-names.js";
import type { Job } from "../../domain/types.js";
import type { JobQueue } from "../../queue/job-queue.js";
import type { VectorStore } from "../../vector-store/vector-store.js";
import { CollectionParams, CutoverBody, ReembedBody } from "../../wire/requests.js";
import { CutoverDone, ReembedAccepted, VersionSwap } from "../../wire/responses.js";
import { type ClientChunk, newChunk } from "../admission.js";
import { type App, type AppDeps, overflowFor, servedModel } from "../app-deps.js";
import { checkCutover } from "../cutover-check.js";
import { accepts, answers } from "../route-responses.js";

/** Stored chunks read per store call while a re-embed is planned: bounded work per step. */
const SCAN_PAGE = 256;

type VersionedStore = VectorStore & Required<Pick<VectorStore, "resolveAlias" | "scanChunks">>;

function versioned(store: VectorStore): VersionedStore {
  if (store.resolveAlias === undefined || store.scanChunks === undefined) {
    throw new AppError("versions_unsupported", "This vector store cannot keep versions of a collection yet", {
      details: { supported: ["sqlite-vec", "qdrant"] },
    });
  }
  return store as VersionedStore;
}

/** Clients name collections; `docs__v2` is a version of `docs`, reached only through `docs`. */
export function logicalCollection(collection: string): string {
  if (logicalName(collection) !== collection) {
    throw new AppError(
      "invalid_request",
      `"${collection}" names a version of "${logicalName(collection)}"; use the collection's name`,
      { details: { collection, name: logicalName(collection) } },
    );
  }
  return collection;
}

/** The re-embed job of a version: one per version, so a repeated POST finds it (and a crash loses nothing). */
export function reembedJobId(version: string): string {
  return idempotentJobId(version, "reembed");
}

/** The id of the re-embed after `previous` into `version` (the version was deleted and is built again). */
function nextReembedJobId(version: string, previous: string): string {
  return idempotentJobId(version, `reembed-after:${previous}`);
}

/** Re-embeds of one version that a deletion can start again: a handful, never more than this. */
const MAX_REEMBED_GENERATIONS = 1_000;

/**
 * The latest re-embed job of `version`: the first (reembedJobId), or the one after it when the
 * version was deleted and re-embedded again, and so on. Null when none is on record.
 */
export async function latestReembedJob(
  queue: Pick<JobQueue, "getJob">,
  version: string,
): Promise<Job | null> {
  let job = await queue.getJob(reembedJobId(version));
  for (let generation = 0; job !== null && generation < MAX_REEMBED_GENERATIONS; generation++) {
    const next = await queue.getJob(nextReembedJobId(version, job.id));
    if (next === null) return job;
    job = next;
  }
  return job;
}

/** How long a re-embed waits for the collection's queued chunks to be stored before it answers 409. */
const DRAIN_WAIT_MS = 30_000;

/** Resolves once `version` has no chunk queued; `409 collection_busy` if that takes longer than DRAIN_WAIT_MS. */
async function drained(deps: AppDeps, version: string, collection: string): Promise<void> {
  const deadline = Date.now() + DRAIN_WAIT_MS;
  for (;;) {
    // Chunks are queued under the name; a re-embed's copies under the version (after a cutover).
    const pending =
      (await deps.queue.pendingInCollection(collection)) +
      (version === collection ? 0 : await deps.queue.pendingInCollection(version));
    if (pending === 0) return;
    if (Date.now() >= deadline) {
      throw new AppError(
        "collection_busy",
        `Collection "${collection}" has ${pending} chunk(s) still queued; a re-embed copies stored text, so it starts once they are stored`,
        { retryAfterSeconds: 10, details: { collection, pending } },
      );
    }
    deps.onEnqueued();
    await sleep(250);
  }
}

function pendingChunks(counts: JobCounts): number {
  return counts.queued + counts.running + counts.failed;
}

/**
 * Blue/green re-embedding. A collection's name reaches one version (version 1 is the name itself);
 * reembed builds the next version from the stored text with the server's model, cutover points the
 * name at it, rollback points it back. Versions are kept until deleted.
 */
export function registerVersionRoutes(app: App, deps: AppDeps): void {
  app.post(
    "/v1/collections/:collection/reembed",
    {
      schema: {
        summary: "Re-embed a collection's stored chunks with the server's model into its next version",
        tags: ["collections"],
        params: CollectionParams,
        body: ReembedBody,
        response: accepts(ReembedAccepted),
      },
      // The body is optional (`curl -X POST .../reembed`): none is `{}`, the server's own model.
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request, reply) => {
      const collection = logicalCollection(request.params.collection);
      const { info: model } = servedModel(deps, request.body.model);
      const store = versioned(deps.store);
      const description = await store.describeCollection(collection);
      if (description === null) {
        throw new AppError("collection_not_found", `Collection "${collection}" does not exist`, {
          details: { collection },
        });
      }
      const fingerprint = modelFingerprint(model);
      if (description.binding?.fingerprint === fingerprint) {
        throw new AppError(
          "reembed_not_needed",
          `Collection "${collection}" is already bound to the model '${servedModelName(model)}'`,
          { details: { collection, fingerprint } },
        );
      }
      const from = await store.resolveAlias(collection);
      const to = versionName(collection, versionOf(from) + 1);
      const binding = bindingFor(model);
      const spec = { name: to, dimension: model.dimension, distance: deps.limits.distance, binding };
      const existing = await store.describeCollection(to);
      if (existing?.binding && existing.binding.fingerprint !== fingerprint) {
        // Left bound to another model by an earlier re-embed: its chunks could only die there.
        throw modelMismatch(to, existing.binding, binding);
      }
      let known = await latestReembedJob(deps.queue, to);
      let jobId = known?.id ?? reembedJobId(to);
      if (
        known !== null &&
        existing === null &&
        known.counts.stored + known.counts.unchanged > 0 &&
        pendingChunks(known.counts) === 0
      ) {
        // Its version stored chunks and is gone: it was deleted (DELETE .../versions/{N}) after
        // that re-embed ran, so this is a new one, under the next id (a crash before a version is
        // created leaves its job with nothing stored).
        jobId = nextReembedJobId(to, known.id);
        known = null;
      }
      if (known !== null) {
        // A crash may have come between the enqueue and the collection's creation: create it, and
        // give the copies that waited for it past their attempts (dead letters) another turn.
        await deps.admission.rerouting(collection, () => store.ensureCollection(spec));
        if (known.counts.dead > 0 && (await deps.queue.replayDeadLetters({ jobId })) > 0) deps.onEnqueued();
        return reply.status(202).send(accepted(jobId, known.counts.total, collection, from, to, 0, true));
      }
      // The copies are read from the store: chunks of the collection still queued must be stored
      // first, or the new version would get their older text.
      await drained(deps, from, collection);
      const result = await deps.admission.rerouting(collection, async () => {
        // Under the gate, this process admits nothing into the collection until the new version
        // exists: every chunk accepted later is queued after the copies (a newer version of it).
        await drained(deps, from, collection);
        const { chunks, skipped } = await readStored(store, from);
        if (chunks.length === 0) {
          throw new AppError("invalid_request", `Collection "${collection}" holds no chunk to re-embed`, {
            details: { collection, skipped },
          });
        }
        const overflow = overflowFor(deps);
        const chunkOverflow = {
          policy: overflow.policy === "reject" ? ("truncate" as const) : overflow.policy,
          overlapTokens: overflow.overlapTokens,
        };
        const enqueued = await deps.queue.enqueue({
          jobId,
          collection: to,
          chunks: chunks.map((chunk) => ({ ...chunk, overflow: chunkOverflow })),
          maxQueueSize: Number.MAX_SAFE_INTEGER,
          background: true,
        });
        if (!enqueued.accepted) throw new AppError("queue_full", "The queue refused the re-embed");
        // Created after its copies are queued: from now on admission routes (or copies) chunks
        // into it, each a newer version than the re-embed's copy of its stored text.
        await store.ensureCollection(spec);
        return { ...enqueued, skipped };
      });
      deps.onEnqueued();
      return reply
        .status(202)
        .send(accepted(result.jobId, result.count, collection, from, to, result.skipped, result.duplicate));
    },
  );

  app.post(
    "/v1/collections/:collection/cutover",
    {
      schema: {
        summary:
          "Point the collection's name at its next version, once its re-embed has no chunk pending (and, with `check`, only if both versions answer sample queries alike)",
        tags: ["collections"],
        params: CollectionParams,
        body: CutoverBody,
        response: answers(CutoverDone),
      },
      // The body is optional (`curl -X POST .../cutover`): none is `{}`, no check.
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request) => {
      const collection = logicalCollection(request.params.collection);
      const store = versioned(deps.store);
      const from = await store.resolveAlias(collection);
      const to = versionName(collection, versionOf(from) + 1);
      if ((await store.describeCollection(to)) === null) {
        throw new AppError(
          "no_version",
          `Collection "${collection}" has no version after "${from}" to cut over to`,
          {
            details: { collection, active_version: from },
          },
        );
      }
      const job = await latestReembedJob(deps.queue, to);
      const pending = job === null ? 0 : pendingChunks(job.counts);
      if (pending > 0) {
        throw new AppError(
          "reembed_pending",
          `The re-embed of "${collection}" into "${to}" has ${pending} chunk(s) still to store`,
          { retryAfterSeconds: 5, details: { collection, job_id: job?.id, pending, counts: job?.counts } },
        );
      }
      const { check } = request.body;
      if (check === undefined) return swap(deps, store, collection, from, to);
      const report = await checkCutover(deps, deps.store, { collection, from, to }, check);
      return { ...(await swap(deps, store, collection, from, to)), check: report };
    },
  );

  app.post(
    "/v1/collections/:collection/rollback",
    {
      schema: {
        summary: "Point the collection's name back at its previous version (kept since the cutover)",
        tags: ["collections"],
        params: CollectionParams,
        response: answers(VersionSwap),
      },
    },
    async (request) => {
      const collection = logicalCollection(request.params.collection);
      const store = versioned(deps.store);
      const from = await store.resolveAlias(collection);
      if (versionOf(from) <= 1) {
        throw new AppError(
          "no_version",
          `Collection "${collection}" is at its first version: nothing to roll back to`,
          {
            details: { collection, active_version: from },
          },
        );
      }
      const previous = versionName(collection, versionOf(from) - 1);
      try {
        return await swap(deps, store, collection, from, previous);
      } catch (error) {
        // The store checks the target in the same step as the swap: it was deleted (DELETE .../versions/N).
        if (!(error instanceof AppError) || error.code !== "collection_not_found") throw error;
        throw new AppError(
          "no_version",
          `Collection "${collection}" has no version "${previous}" to roll back to: it was deleted`,
          { details: { collection, active_version: from, previous_version: previous } },
        );
      }
    },
  );
}

async function swap(deps: AppDeps, store: VersionedStore, collection: string, from: string, to: string) {
  try {
    await store.setAlias(collection, to);
  } finally {
    // This process's admission; other API processes read the binding again when their cache misses.
    deps.admission.forgetCollection(collection);
  }
  return { collection, active_version: to, previous_version: from };
}

/** Every stored chunk of `version`, read page by page; chunks whose text cannot be read back are counted. */
async function readStored(
  store: VersionedStore,
  version: string,
): Promise<{ chunks: ClientChunk[]; skipped: number }> {
  const chunks: ClientChunk[] = [];
  let skipped = 0;
  let after: string | null = null;
  do {
    const page: Awaited<ReturnType<VersionedStore["scanChunks"]>> = await store.scanChunks(
      version,
      after,
      SCAN_PAGE,
    );
    for (const chunk of page.chunks) {
      if (chunk.text === null || chunk.text.trim() === "") skipped += 1;
      else chunks.push(newChunk(chunk.chunkId, chunk.text, chunk.documentId, chunk.payload));
    }
    after = page.nextCursor;
  } while (after !== null);
  return { chunks, skipped };
}

function accepted(
  jobId: string,
  count: number,
  collection: string,
  from: string,
  to: string,
  skipped: number,
  duplicate: boolean,
): ReembedAccepted {
  return {
    job_id: jobId,
    status: "accepted",
    count,
    collection,
    from_version: from,
    to_version: to,
    skipped,
    duplicate,
  };
}
