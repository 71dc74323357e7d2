import { AppError } from "../domain/errors.js";
import { bindingFor, type ModelBinding, modelFingerprint, modelMismatch } from "../domain/model-binding.js";
import type { Distance, ModelInfo } from "../domain/types.js";
import type { ServedModel } from "../embedder/model-roster.js";
import type { CollectionDescription, VectorStore } from "../vector-store/vector-store.js";
import { nextVersion } from "./next-version.js";

/** Collections whose binding is remembered; beyond it the oldest is forgotten (and read again if used). */
const DEFAULT_CACHE_SIZE = 10_000;
/** After the store failed, uncached collections are let through unchecked this long without asking it. */
const STORE_DOWN_GRACE_MS = 5_000;

/** Which served model embeds a collection's chunks: the roster (embedder/model-roster.ts) answers. */
export interface ModelLookup {
  byFingerprint(fingerprint: string): ServedModel | undefined;
}

/** Where admission queues a request's chunks, and with which model they will be embedded. */
export interface CollectionRoute {
  /** The collection (or version) the chunks are queued into. */
  collection: string;
  /**
   * A second version that gets a copy of them: the next version a re-embed builds for another served
   * model, while the collection's own model is served too (blue/green dual writes). Null otherwise.
   */
  alsoTo: string | null;
  /** The served model that embeds the chunks queued into `collection`; null: the default (not known yet). */
  model: ServedModel | null;
}

/**
 * How long the binding a name reaches is remembered: a binding never changes, but a cutover or a
 * rollback in another API process points the name at another version (this process's own call `forget`).
 */
const BINDING_TTL_MS = 5_000;

/** How long a collection's next version (or its absence) is remembered: other processes re-embed too. */
const NEXT_VERSION_TTL_MS = 1_000;

/**
 * Admission's check that a collection takes the model's vectors, before anything is queued: a
 * request into a collection bound to another profile is refused with `409 model_mismatch` instead of
 * queueing chunks that could only die. Bindings are cached for a few seconds
 * (a cutover elsewhere points the name at another version), so the check costs a store read per
 * collection every few seconds, not one per request. With several models served,
 * it also picks the model: the one the collection is bound to, the one a request names (a new
 * collection is created bound to it), or the default.
 */
export class CollectionBindings {
  private readonly cache = new Map<string, { binding: ModelBinding; at: number }>();
  private readonly nextVersions = new Map<string, { at: number; next: NextVersion | null }>();
  /** Until when the store is taken as down (a frozen one would hold every request BACKEND_TIMEOUT_MS). */
  private storeDownUntil = 0;

  constructor(
    private readonly store: Pick<
      VectorStore,
      "describeCollection" | "adoptCollection" | "resolveAlias" | "ensureCollection"
    >,
    private readonly models: ModelLookup = { byFingerprint: () => undefined },
    private readonly options: { distance: Distance; maxCached?: number } = { distance: "Cosine" },
  ) {}

  /**
   * Resolves when `model` may write into `collection`: the collection does not exist yet (it will be
   * created bound to the model), or it is bound to the model's profile, or it has no binding yet (made
   * before bindings) and the model's dimension fits, in which case it is bound to the model now.
   * Returns the collection to queue into: `collection`, or, while it is re-embedded to the model
   * (bound to another one, with a next version bound to the model), that version.
   */
  async check(collection: string, model: ModelInfo | null): Promise<string> {
    return (await this.route(collection, model)).collection;
  }

  /**
   * Where a request's chunks go. `defaultModel` embeds them when the request names no model and the
   * collection's own model is not served; `requested` is the model the request names (`model`).
   */
  async route(
    collection: string,
    defaultModel: ModelInfo | null,
    requested?: ServedModel,
  ): Promise<CollectionRoute> {
    const unchecked: CollectionRoute = { collection, alsoTo: null, model: requested ?? null };
    const cached = this.cache.get(collection);
    let binding =
      cached !== undefined && Date.now() - cached.at < BINDING_TTL_MS ? cached.binding : undefined;
    if (binding === undefined) {
      if (Date.now() < this.storeDownUntil) return unchecked;
      let description: CollectionDescription | null;
      try {
        description = await this.store.describeCollection(collection);
      } catch (error) {
        // Ingest stays open while the store is down (the queue is there to absorb that); the binding
        // is then enforced where the chunks are written: ensureCollection refuses another profile and
        // the chunks go to dead letters with model_mismatch, never into the collection.
        if (error instanceof AppError && error.code === "store_unavailable") {
          this.storeDownUntil = Date.now() + STORE_DOWN_GRACE_MS;
          return unchecked;
        }
        throw error;
      }
      const model = requested?.info ?? defaultModel;
      if (description === null) {
        // A new collection named with a model that is not the default is created bound to it now:
        // the pipeline embeds a collection's chunks with the model its binding names.
        if (
          requested?.info &&
          defaultModel &&
          modelFingerprint(requested.info) !== modelFingerprint(defaultModel)
        ) {
          await this.store.ensureCollection({
            name: collection,
            dimension: requested.info.dimension,
            distance: this.options.distance,
            binding: bindingFor(requested.info),
          });
        }
        return unchecked;
      }
      if (model === null) {
        throw new AppError(
          "model_not_ready",
          `The model is still loading; collection "${collection}" takes only its own model's vectors, which is checked once the model has loaded`,
          { retryAfterSeconds: 2, details: { collection } },
        );
      }
      binding = description.binding ?? undefined;
      if (binding === undefined) {
        if (description.dimension !== model.dimension) {
          throw new AppError(
            "dimension_mismatch",
            `Collection "${collection}" holds ${description.dimension}-dimensional vectors; the model makes ${model.dimension}. Use another collection name.`,
            { details: { collection, existing: description.dimension, model: model.dimension } },
          );
        }
        binding = await this.store.adoptCollection(collection, bindingFor(model, { adopted: true }));
      }
      this.remember(collection, binding);
    }
    return this.routeBound(collection, binding, defaultModel, requested);
  }

  /** Forget what is known of `collection` (its name now reaches another version: a cutover, a rollback). */
  forget(collection: string): void {
    this.cache.delete(collection);
    this.nextVersions.delete(collection);
  }

  private async routeBound(
    collection: string,
    binding: ModelBinding,
    defaultModel: ModelInfo | null,
    requested: ServedModel | undefined,
  ): Promise<CollectionRoute> {
    const own =
      this.models.byFingerprint(binding.fingerprint) ??
      (requested?.info && modelFingerprint(requested.info) === binding.fingerprint ? requested : undefined);
    // With no roster (one model), the default model is the collection's own when the prints agree.
    const ownIsDefault = defaultModel !== null && modelFingerprint(defaultModel) === binding.fingerprint;
    const next = await this.nextVersion(collection);
    if (requested?.info && modelFingerprint(requested.info) !== binding.fingerprint) {
      // Naming the model a re-embed builds the next version for writes into that version alone.
      if (next?.binding?.fingerprint === modelFingerprint(requested.info)) {
        return { collection: next.name, alsoTo: null, model: requested };
      }
      throw modelMismatch(collection, binding, bindingFor(requested.info));
    }
    const nextModel = next?.binding ? this.models.byFingerprint(next.binding.fingerprint) : undefined;
    if (own !== undefined || ownIsDefault) {
      // Both models served: the name's version keeps taking the chunks, and the version being built
      // gets a copy embedded by its own model, so that nothing is missing from it at the cutover.
      const alsoTo =
        next !== null && nextModel !== undefined && next.binding?.fingerprint !== binding.fingerprint;
      return { collection, alsoTo: alsoTo ? (next?.name ?? null) : null, model: own ?? null };
    }
    if (defaultModel === null) return { collection, alsoTo: null, model: null };
    // The collection's own model is not served (the server restarted on a new one): its chunks go
    // to the version a re-embed builds for a served model, else nowhere.
    if (next !== null && nextModel !== undefined)
      return { collection: next.name, alsoTo: null, model: nextModel };
    throw modelMismatch(collection, binding, bindingFor(defaultModel));
  }

  /**
   * The version being built (POST .../reembed): the one after the version the name reaches, when it
   * exists. Remembered for a second: a cutover, a rollback or a re-embed in another process changes
   * the answer, and this process's own ones call `forget`.
   */
  private async nextVersion(collection: string): Promise<NextVersion | null> {
    const known = this.nextVersions.get(collection);
    if (known !== undefined && Date.now() - known.at < NEXT_VERSION_TTL_MS) return known.next;
    const found = await nextVersion(this.store, collection);
    const next = found === null ? null : { name: found.name, binding: found.description.binding };
    this.nextVersions.set(collection, { at: Date.now(), next });
    if (this.nextVersions.size > (this.options.maxCached ?? DEFAULT_CACHE_SIZE)) {
      const oldest = this.nextVersions.keys().next().value;
      if (oldest !== undefined) this.nextVersions.delete(oldest);
    }
    return next;
  }

  private remember(collection: string, binding: ModelBinding): void {
    this.cache.delete(collection);
    this.cache.set(collection, { binding, at: Date.now() });
    if (this.cache.size > (this.options.maxCached ?? DEFAULT_CACHE_SIZE)) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
  }
}

interface NextVersion {
  name: string;
  binding: ModelBinding | null;
}
