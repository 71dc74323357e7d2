import { versionName, versionOf } from "../../domain/collection-versions.js";
import { AppError } from "../../domain/errors.js";
import type { StoredVersion, VectorStore } from "../../vector-store/vector-store.js";
import { CollectionParams, VersionParams } from "../../wire/requests.js";
import { type CollectionVersion, CollectionVersions, VersionDeleted } from "../../wire/responses.js";
import type { App, AppDeps } from "../app-deps.js";
import { bindingBody } from "../collection-bodies.js";
import { answers } from "../route-responses.js";
import { servedEmbedder } from "../served-embedders.js";
import { latestReembedJob, logicalCollection } from "./version-routes.js";

type VersionAdminStore = VectorStore &
  Required<Pick<VectorStore, "resolveAlias" | "listVersions" | "deleteCollection">>;

function versionAdmin(store: VectorStore): VersionAdminStore {
  if (
    store.resolveAlias === undefined ||
    store.listVersions === undefined ||
    store.deleteCollection === undefined
  ) {
    throw new AppError("versions_unsupported", "This vector store cannot keep versions of a collection yet", {
      details: { supported: ["sqlite-vec", "qdrant"] },
    });
  }
  return store as VersionAdminStore;
}

/**
 * Listing and deleting the versions of a collection (blue/green re-embedding; version-routes.ts
 * builds and switches them). A version is deleted only explicitly, never by a cutover or a rollback,
 * and never while a name reaches it or chunks are queued for it.
 */
export function registerVersionAdminRoutes(app: App, deps: AppDeps): void {
  app.get(
    "/v1/collections/:collection/versions",
    {
      schema: {
        summary: "The versions of a collection: which one its name reaches, their models and sizes",
        tags: ["collections"],
        params: CollectionParams,
        response: answers(CollectionVersions),
      },
    },
    async (request): Promise<CollectionVersions> => {
      const collection = logicalCollection(request.params.collection);
      const store = versionAdmin(deps.store);
      const [stored, active] = await Promise.all([
        store.listVersions(collection),
        store.resolveAlias(collection),
      ]);
      if (stored.length === 0) {
        throw new AppError("collection_not_found", `Collection "${collection}" does not exist`, {
          details: { collection },
        });
      }
      const nextName = versionName(collection, versionOf(active) + 1);
      const versions: CollectionVersion[] = [];
      // A collection has a handful of versions: one job read and one queue count each.
      for (const version of stored) {
        const number = versionOf(version.name);
        const job = number >= 2 ? await latestReembedJob(deps.queue, version.name) : null;
        versions.push({
          version: number,
          name: version.name,
          active: version.name === active,
          next: version.name === nextName,
          dimension: version.dimension,
          distance: version.distance,
          points: version.points,
          binding: version.binding === null ? null : bindingBody(version.binding),
          model_served:
            version.binding !== null && servedEmbedder(deps, version.binding.fingerprint) !== null,
          reembed_job_id: job?.id ?? null,
          pending_chunks: await pendingFor(deps, collection, version.name, active),
        });
      }
      return { collection, active_version: active, versions };
    },
  );

  app.delete(
    "/v1/collections/:collection/versions/:version",
    {
      schema: {
        summary:
          "Delete a version of a collection (its points and binding): never the one its name reaches, nor one with chunks queued",
        tags: ["collections"],
        params: VersionParams,
        response: answers(VersionDeleted),
      },
    },
    async (request): Promise<VersionDeleted> => {
      const collection = logicalCollection(request.params.collection);
      const number = request.params.version;
      const store = versionAdmin(deps.store);
      const name = versionName(collection, number);
      const stored = await store.listVersions(collection);
      const version = stored.find((v) => v.name === name);
      if (version === undefined) throw versionNotFound(collection, number, name, stored);
      const active = await store.resolveAlias(collection);
      if (active === name) {
        throw new AppError(
          "version_active",
          `Version ${number} ("${name}") is the one "${collection}" reaches: cut over or roll back to another version before deleting it`,
          { details: { collection, version: number, name, active_version: active } },
        );
      }
      // Chunks queued for it (its re-embed, or live ingest routed to it) would fail once it is gone.
      const pending = await pendingFor(deps, collection, name, active);
      if (pending > 0) {
        const job = number >= 2 ? await latestReembedJob(deps.queue, name) : null;
        throw new AppError(
          "reembed_pending",
          `Version ${number} ("${name}") has ${pending} chunk(s) queued and not stored yet: let them finish, or cancel the re-embed job (DELETE /v1/jobs/{id}) first`,
          {
            retryAfterSeconds: 5,
            details: { collection, version: number, name, pending, job_id: job?.id ?? null },
          },
        );
      }
      // The store refuses again, atomically, if a cutover or rollback to it came in between.
      const deleted = await store.deleteCollection(name);
      deps.admission.forgetCollection(collection);
      return {
        collection,
        version: number,
        name,
        deleted_points: deleted,
        binding: version.binding === null ? null : bindingBody(version.binding),
        active_version: active,
      };
    },
  );
}

/**
 * Chunks queued that will be written into version `name`. Those queued under `docs__vN` land there;
 * those queued under the collection's name land in whatever version the name reaches when they are
 * written: the active one (version 1 is the name's own, so it has only those, and only while active).
 */
async function pendingFor(deps: AppDeps, collection: string, name: string, active: string): Promise<number> {
  const own = versionOf(name) >= 2 ? await deps.queue.pendingInCollection(name) : 0;
  const underName = name === active ? await deps.queue.pendingInCollection(collection) : 0;
  return own + underName;
}

function versionNotFound(collection: string, version: number, name: string, stored: StoredVersion[]) {
  if (stored.length === 0) {
    return new AppError("collection_not_found", `Collection "${collection}" does not exist`, {
      details: { collection },
    });
  }
  return new AppError(
    "version_not_found",
    `Collection "${collection}" has no version ${version} ("${name}")`,
    {
      details: { collection, version, versions: stored.map((v) => versionOf(v.name)) },
    },
  );
}
