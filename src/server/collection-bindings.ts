import { AppError } from "../domain/errors.js";
import { bindingFor, type ModelBinding, modelFingerprint, modelMismatch } from "../domain/model-binding.js";
import type { ModelInfo } from "../domain/types.js";
import type { CollectionDescription, VectorStore } from "../vector-store/vector-store.js";
import { nextVersion } from "./next-version.js";

/** Collections whose binding is remembered; beyond it the oldest is forgotten (and read again if used). */
const DEFAULT_CACHE_SIZE = 10_000;
/** After the store failed, uncached collections are let through unchecked this long without asking it. */
const STORE_DOWN_GRACE_MS = 5_000;

/**
 * Admission's check that a collection takes the model's vectors, before anything is queued: a
 * request into a collection bound to another profile is refused with `409 model_mismatch` instead of
 * queueing chunks that could only die. Bindings are cached (a binding never changes once recorded),
 * so the check costs one store read per collection, not one per request.
 */
export class CollectionBindings {
  private readonly cache = new Map<string, ModelBinding>();
  /** Until when the store is taken as down (a frozen one would hold every request BACKEND_TIMEOUT_MS). */
  private storeDownUntil = 0;

  constructor(
    private readonly store: Pick<VectorStore, "describeCollection" | "adoptCollection" | "resolveAlias">,
    private readonly maxCached = DEFAULT_CACHE_SIZE,
  ) {}

  /**
   * Resolves when `model` may write into `collection`: the collection does not exist yet (it will be
   * created bound to the model), or it is bound to the model's profile, or it has no binding yet (made
   * before bindings) and the model's dimension fits, in which case it is bound to the model now.
   * Returns the collection to queue into: `collection`, or, while it is re-embedded to the model
   * (bound to another one, with a next version bound to the model), that version.
   */
  async check(collection: string, model: ModelInfo | null): Promise<string> {
    const cached = this.cache.get(collection);
    if (cached !== undefined && model !== null) return this.compare(collection, cached, model);
    if (Date.now() < this.storeDownUntil) return collection;
    let description: CollectionDescription | null;
    try {
      description = await this.store.describeCollection(collection);
    } catch (error) {
      // Ingest stays open while the store is down (the queue is there to absorb that); the binding
      // is then enforced where the chunks are written: ensureCollection refuses another profile and
      // the chunks go to dead letters with model_mismatch, never into the collection.
      if (error instanceof AppError && error.code === "store_unavailable") {
        this.storeDownUntil = Date.now() + STORE_DOWN_GRACE_MS;
        return collection;
      }
      throw error;
    }
    if (description === null) return collection;
    if (model === null) {
      throw new AppError(
        "model_not_ready",
        `The model is still loading; collection "${collection}" takes only its own model's vectors, which is checked once the model has loaded`,
        { retryAfterSeconds: 2, details: { collection } },
      );
    }
    let binding = description.binding;
    if (binding === null) {
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
    return this.compare(collection, binding, model);
  }

  /** Forget what is known of `collection` (its name now reaches another version: a cutover, a rollback). */
  forget(collection: string): void {
    this.cache.delete(collection);
  }

  private async compare(collection: string, binding: ModelBinding, model: ModelInfo): Promise<string> {
    const fingerprint = modelFingerprint(model);
    if (binding.fingerprint === fingerprint) return collection;
    const shadow = await this.shadowFor(collection, fingerprint);
    if (shadow !== null) return shadow;
    throw modelMismatch(collection, binding, bindingFor(model));
  }

  /**
   * The version being built for the model (POST .../reembed): the one after the version the name
   * reaches, when it exists bound to the model. One store read per request while a re-embed runs
   * (not cached: a cutover or a rollback in another process changes the answer).
   */
  private async shadowFor(collection: string, fingerprint: string): Promise<string | null> {
    const next = await nextVersion(this.store, collection);
    return next?.description.binding?.fingerprint === fingerprint ? next.name : null;
  }

  private remember(collection: string, binding: ModelBinding): void {
    this.cache.delete(collection);
    this.cache.set(collection, binding);
    if (this.cache.size > this.maxCached) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
  }
}
