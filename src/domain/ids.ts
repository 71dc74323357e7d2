import { createHash } from "node:crypto";
import { v5 as uuidv5 } from "uuid";
import type { JsonValue } from "./types.js";

/** Namespace for point ids (a fixed random UUID: changing it would orphan every stored point). */
const POINT_NAMESPACE = "6f1b3c2e-8d4a-5b7e-9c21-3a0f5e7d9b42";

/** Deterministic point id, so that re-ingesting a chunk overwrites its point instead of adding one. */
export function pointId(collection: string, chunkId: string): string {
  return uuidv5(`${collection}\u0000${chunkId}`, POINT_NAMESPACE);
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
