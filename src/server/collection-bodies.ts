import { type ModelBinding, modelFingerprint } from "../domain/model-binding.js";
import type { ModelInfo } from "../domain/types.js";
import type { CollectionDescription } from "../vector-store/vector-store.js";
import type { CollectionBinding, CollectionInfo } from "../wire/responses.js";

/** A binding as the API shows it (snake_case, like every body). */
export function bindingBody(binding: ModelBinding): CollectionBinding {
  return {
    model: binding.model,
    source: binding.source,
    weights_sha256: binding.weightsSha256,
    dtype: binding.dtype,
    pooling: binding.pooling,
    normalize: binding.normalize,
    prefixes: { passage: binding.prefixes.passage, query: binding.prefixes.query },
    max_tokens: binding.maxTokens,
    dimension: binding.dimension,
    fingerprint: binding.fingerprint,
    bound_at: binding.boundAt,
    adopted: binding.adopted,
  };
}

/** GET /v1/collections/{collection}: the store's description, its size, and whether the model fits it. */
export function collectionBody(
  description: CollectionDescription,
  points: number,
  model: ModelInfo | null,
): CollectionInfo {
  const { binding } = description;
  return {
    name: description.name,
    dimension: description.dimension,
    distance: description.distance,
    points,
    binding: binding === null ? null : bindingBody(binding),
    model_matches:
      binding === null || model === null ? null : binding.fingerprint === modelFingerprint(model),
  };
}
