/**
 * A Qdrant collection's embedding binding lives in the collection's own metadata (Qdrant 1.16+:
 * `metadata` on create, merged by PATCH, shown in the collection info's config), under one key, so
 * the binding travels with the collection (snapshots, other clients) and other metadata is left alone.
 */
import type { Schemas } from "@qdrant/js-client-rest";
import { type ModelBinding, parseBinding } from "../../domain/model-binding.js";

export const BINDING_METADATA_KEY = "rag_embed_binding";

export function bindingMetadata(binding: ModelBinding): Record<string, unknown> {
  return { [BINDING_METADATA_KEY]: binding };
}

/** The binding recorded in a collection's info; null when none is (or the server keeps no metadata). */
export function bindingOf(info: Schemas["CollectionInfo"]): ModelBinding | null {
  const metadata = info.config.metadata;
  if (typeof metadata !== "object" || metadata === null) return null;
  return parseBinding((metadata as Record<string, unknown>)[BINDING_METADATA_KEY]);
}
