/**
 * Where transformers.js loads a model's files from: a local directory, or the Hugging Face hub into a
 * cache directory. Written once for the local embedding process and the remote adapter's tokenizer.
 * Takes transformers.js's `env` from the caller, so a caller that imports transformers.js lazily
 * still does.
 */
import { basename, dirname } from "node:path";
import type { env as TransformersEnv } from "@huggingface/transformers";

export type ModelLocation =
  | { kind: "local" /** Absolute. */; directory: string }
  | { kind: "hub"; id: string; cacheDir: string };

/** Points transformers.js at `location`; returns the name to pass to from_pretrained. */
export function useModelLocation(env: typeof TransformersEnv, location: ModelLocation): string {
  if (location.kind === "local") {
    // transformers.js strips a leading slash from ids, so an absolute path cannot be the id: point the
    // local root at the parent and load by directory name.
    env.allowLocalModels = true;
    env.allowRemoteModels = false;
    env.localModelPath = dirname(location.directory);
    return basename(location.directory);
  }
  // Local lookups off, so a hub id is never resolved against the default local root by accident.
  env.allowLocalModels = false;
  env.allowRemoteModels = true;
  env.cacheDir = location.cacheDir;
  return location.id;
}
