import { basename, isAbsolute } from "node:path";
import type { ModelInfo } from "./types.js";

/**
 * The model's name towards OpenAI clients: SERVED_MODEL_NAME, else the hub id it was loaded by,
 * else a local directory's base name (a filesystem path is no name a client should have to know).
 */
export function servedModelName(model: ModelInfo): string {
  if (model.servedName) return model.servedName;
  return isAbsolute(model.id) ? basename(model.id) : model.id;
}

/**
 * Every name a request may use for the served model, compared case-insensitively: the served name,
 * the id it was loaded by (hub id or directory), the weights' hub id, and the base names of these
 * (`all-MiniLM-L6-v2` for `sentence-transformers/all-MiniLM-L6-v2`).
 */
export function acceptedModelNames(model: ModelInfo): string[] {
  const names = [servedModelName(model), model.id, ...(model.hubId ? [model.hubId] : [])];
  return [...new Set([...names, ...names.map((name) => basename(name))])];
}

/** Also an org-qualified spelling of a known base name (`Xenova/all-MiniLM-L6-v2`), as before. */
export function servesModel(model: ModelInfo, requested: string): boolean {
  const wanted = requested.trim().toLowerCase();
  const known = new Set(acceptedModelNames(model).map((name) => name.toLowerCase()));
  return known.has(wanted) || known.has(basename(wanted));
}
