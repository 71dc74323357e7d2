import { AppError } from "../domain/errors.js";
import { describeBinding, type ModelBinding } from "../domain/model-binding.js";
import type { Embedder } from "../embedder/embedder.js";
import { type AppDeps, rosterOf } from "./app-deps.js";

/**
 * The embedder serving the model whose binding fingerprint is `fingerprint` (one of the served
 * models, EMBEDDING_MODELS); null when no served model has it, or while it loads.
 */
export function servedEmbedder(deps: AppDeps, fingerprint: string): Embedder | null {
  return rosterOf(deps).byFingerprint(fingerprint)?.embedder ?? null;
}

/**
 * The embedder of the model a version of a collection is bound to, to embed queries the way its
 * points were: `model_not_served` when this server does not serve that model (or the version records
 * none), `model_not_ready` while the server's own model loads (it may be that one).
 */
export function embedderOfVersion(
  deps: AppDeps,
  collection: string,
  version: string,
  binding: ModelBinding | null,
): Embedder {
  if (binding === null) {
    throw new AppError(
      "model_not_served",
      `Version "${version}" of "${collection}" records no model binding: the model its vectors come from is unknown, so no query can be embedded for it`,
      { details: { collection, version, model: null, fingerprint: null } },
    );
  }
  const embedder = servedEmbedder(deps, binding.fingerprint);
  if (embedder !== null) return embedder;
  if (deps.model() === null) {
    throw new AppError("model_not_ready", "The model is still loading", { retryAfterSeconds: 2 });
  }
  throw new AppError(
    "model_not_served",
    `Version "${version}" of "${collection}" is bound to ${describeBinding(binding)}, which this server does not serve: ` +
      "queries are embedded with each version's own model, so both versions' models must be served (several models in one server)",
    {
      details: {
        collection,
        version,
        model: binding.model,
        weights_sha256: binding.weightsSha256,
        fingerprint: binding.fingerprint,
      },
    },
  );
}
