/**
 * A collection's embedding binding: the profile of the model that wrote its vectors, recorded when
 * the collection is created. Vectors of two models are not comparable, so a collection takes points
 * from one profile only; a point carries the binding's short fingerprint.
 */
import { basename, isAbsolute } from "node:path";
import { AppError } from "./errors.js";
import { canonicalJson, sha256 } from "./ids.js";
import type { ModelInfo } from "./types.js";

/** Hex characters of the fingerprint: 48 bits, plenty to tell a handful of profiles apart. */
const FINGERPRINT_HEX = 12;

/** Everything that decides a vector, and nothing that does not (where the files sit, a served alias). */
export interface ModelProfileIdentity {
  /** The model's name: its hub id (a local export's config `_name_or_path`), else its directory name. */
  model: string;
  /** sha256 of the ONNX weights file, when the weights are local files; null for a remote engine. */
  weightsSha256: string | null;
  dtype: string;
  pooling: "mean" | "cls";
  normalize: boolean;
  prefixes: { passage: string; query: string };
  maxTokens: number;
  dimension: number;
}

export interface ModelBinding extends ModelProfileIdentity {
  /** First FINGERPRINT_HEX hex of sha256 over the canonical identity: what every point carries. */
  fingerprint: string;
  /** Where the binding's model was loaded from (a directory, a hub id, a remote engine): informative only. */
  source: string;
  /** When the binding was recorded (ISO 8601, the recording server's clock); null if not recorded. */
  boundAt: string | null;
  /** True when the collection existed before bindings did and was bound on first use since. */
  adopted: boolean;
}

/** The name a model is known by wherever its files are: hub id, else the directory's base name. */
export function modelName(model: ModelInfo): string {
  if (model.remote) return model.remote.model;
  if (model.hubId) return model.hubId;
  return isAbsolute(model.id) ? basename(model.id) : model.id;
}

export function profileIdentity(model: ModelInfo): ModelProfileIdentity {
  return {
    model: modelName(model),
    weightsSha256: model.weightsSha256 ?? null,
    dtype: model.dtype,
    pooling: model.pooling,
    normalize: model.normalize,
    prefixes: { passage: model.prefixes.passage, query: model.prefixes.query },
    maxTokens: model.maxTokens,
    dimension: model.dimension,
  };
}

export function profileFingerprint(identity: ModelProfileIdentity): string {
  const canonical = canonicalJson({
    model: identity.model,
    weights_sha256: identity.weightsSha256,
    dtype: identity.dtype,
    pooling: identity.pooling,
    normalize: identity.normalize,
    prefixes: { passage: identity.prefixes.passage, query: identity.prefixes.query },
    max_tokens: identity.maxTokens,
    dimension: identity.dimension,
  });
  return sha256(canonical).slice(0, FINGERPRINT_HEX);
}

/** ModelInfo objects live as long as the loaded model: the fingerprint is hashed once per model. */
const fingerprints = new WeakMap<ModelInfo, string>();

/** The fingerprint of the profile `model` embeds with: what its points carry. */
export function modelFingerprint(model: ModelInfo): string {
  let fingerprint = fingerprints.get(model);
  if (fingerprint === undefined) {
    fingerprint = profileFingerprint(profileIdentity(model));
    fingerprints.set(model, fingerprint);
  }
  return fingerprint;
}

/** The binding a collection created (or adopted) now by `model` records. */
export function bindingFor(model: ModelInfo, options: { adopted?: boolean; now?: Date } = {}): ModelBinding {
  return {
    ...profileIdentity(model),
    fingerprint: modelFingerprint(model),
    source: model.remote ? `${model.remote.protocol} ${model.remote.url}` : model.id,
    boundAt: (options.now ?? new Date()).toISOString(),
    adopted: options.adopted ?? false,
  };
}

/** One line naming a profile, for error messages: `name (weights abc123…, q8, fingerprint …)`. */
export function describeBinding(binding: ModelProfileIdentity & { fingerprint: string }): string {
  const weights = binding.weightsSha256 === null ? "" : `weights ${binding.weightsSha256.slice(0, 12)}, `;
  return `${binding.model} (${weights}${binding.dtype}, ${binding.dimension}-d, fingerprint ${binding.fingerprint})`;
}

/** Reads a stored binding back (JSON from a catalog row or collection metadata); null when not one. */
export function parseBinding(value: unknown): ModelBinding | null {
  if (typeof value !== "object" || value === null) return null;
  const v = value as Record<string, unknown>;
  const prefixes = v.prefixes as Record<string, unknown> | undefined;
  if (
    typeof v.model !== "string" ||
    typeof v.fingerprint !== "string" ||
    typeof v.dimension !== "number" ||
    typeof v.maxTokens !== "number" ||
    typeof v.dtype !== "string" ||
    (v.pooling !== "mean" && v.pooling !== "cls") ||
    typeof prefixes?.passage !== "string" ||
    typeof prefixes.query !== "string"
  ) {
    return null;
  }
  return {
    model: v.model,
    weightsSha256: typeof v.weightsSha256 === "string" ? v.weightsSha256 : null,
    dtype: v.dtype,
    pooling: v.pooling,
    normalize: v.normalize !== false,
    prefixes: { passage: prefixes.passage, query: prefixes.query },
    maxTokens: v.maxTokens,
    dimension: v.dimension,
    fingerprint: v.fingerprint,
    source: typeof v.source === "string" ? v.source : v.model,
    boundAt: typeof v.boundAt === "string" ? v.boundAt : null,
    adopted: v.adopted === true,
  };
}

/**
 * `409 model_mismatch`: the collection's vectors come from another profile than the one asked to add
 * to it. Names both, and the way out (another collection), since mixing them would answer searches
 * with meaningless scores.
 */
export function modelMismatch(
  collection: string,
  bound: ModelProfileIdentity & { fingerprint: string },
  current: ModelProfileIdentity & { fingerprint: string },
): AppError {
  return new AppError(
    "model_mismatch",
    `Collection "${collection}" is bound to ${describeBinding(bound)}; this server embeds with ${describeBinding(current)}. ` +
      "Vectors of two models do not mix: ingest into a new collection, or run the server with the collection's model.",
    {
      details: {
        collection,
        bound: { model: bound.model, weights_sha256: bound.weightsSha256, fingerprint: bound.fingerprint },
        current: {
          model: current.model,
          weights_sha256: current.weightsSha256,
          fingerprint: current.fingerprint,
        },
      },
    },
  );
}
