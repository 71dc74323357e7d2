import { createHash } from "node:crypto";
import { v5 as uuidv5 } from "uuid";
import { logicalName } from "./collection-versions.js";
import type { JsonValue } from "./types.js";

/** Namespace for point ids (a fixed random UUID: changing it would orphan every stored point). */
const POINT_NAMESPACE = "6f1b3c2e-8d4a-5b7e-9c21-3a0f5e7d9b42";
/** Namespace for the points of windows 1.. of split chunks (window 0 keeps the chunk's own id). */
const WINDOW_NAMESPACE = "b3e0d6a1-47c2-5f98-8e1d-2c6a9f0b7d35";

/**
 * Deterministic point id, so that re-ingesting a chunk overwrites its point instead of adding one.
 * Derived from the logical collection, so every version of a collection (`docs`, `docs__v2`) gives a
 * chunk the same id, whether a write names the version or the alias.
 */
export function pointId(collection: string, chunkId: string): string {
  return uuidv5(`${logicalName(collection)}\u0000${chunkId}`, POINT_NAMESPACE);
}

/**
 * Point id of window `index` (> 0) of a split chunk. Its own namespace, so no client chunk id (say
 * "a#1") can ever name the same point as a window of another chunk ("a", window 1).
 */
export function windowPointId(collection: string, chunkId: string, index: number): string {
  return uuidv5(`${logicalName(collection)}\u0000${chunkId}\u0000${index}`, WINDOW_NAMESPACE);
}

/** Namespace for job ids derived from a client's Idempotency-Key. */
const IDEMPOTENCY_NAMESPACE = "0d7c5d4e-2f1a-5b8c-9e3d-6a4b1c8f2e70";

/**
 * The job id of a request sent with an Idempotency-Key: the same key (for the same collection)
 * always names the same job, so a retried POST finds the job its first attempt created.
 */
export function idempotentJobId(collection: string, key: string): string {
  return uuidv5(`${collection}\u0000${key}`, IDEMPOTENCY_NAMESPACE);
}

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** Hash of what determines a vector: same model, same prefix, same text => same vector. */
export function contentHash(modelId: string, prefix: string, text: string): string {
  return sha256(`${modelId}\u0000${prefix}\u0000${text}`);
}

/** JSON with object keys sorted, so equal payloads hash equally whatever the key order. */
export function canonicalJson(value: JsonValue): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k] as JsonValue)}`).join(",")}}`;
}
