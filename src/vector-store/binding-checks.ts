/** The binding checks every store makes the same way (see VectorStore.ensureCollection, writeChunks). */
import { AppError } from "../domain/errors.js";
import { describeBinding, type ModelBinding, modelMismatch } from "../domain/model-binding.js";
import type { VectorRecord } from "../domain/types.js";
import type { ChunkWrite } from "./vector-store.js";

/** Throws `model_mismatch` when a bound collection is asked for another profile. */
export function assertSameBinding(
  collection: string,
  existing: ModelBinding | null,
  wanted: ModelBinding | undefined,
): void {
  if (existing === null || wanted === undefined || existing.fingerprint === wanted.fingerprint) return;
  throw modelMismatch(collection, existing, wanted);
}

/**
 * A bound collection takes only points of its own profile. A record without a fingerprint is refused
 * too: nothing says which model made it.
 */
export function assertRecordFingerprints(
  collection: string,
  binding: ModelBinding | null,
  writes: readonly ChunkWrite[],
): void {
  if (binding === null) return;
  const stranger = writes
    .flatMap((w): VectorRecord[] => (w.kind === "points" ? w.records : []))
    .find((r) => r.modelFingerprint !== binding.fingerprint);
  if (stranger === undefined) return;
  throw new AppError(
    "model_mismatch",
    `Collection "${collection}" is bound to ${describeBinding(binding)}; chunk ${JSON.stringify(stranger.chunkId)} ` +
      `was embedded with ${stranger.modelFingerprint === undefined ? "no recorded profile" : `profile fingerprint ${stranger.modelFingerprint}`}`,
    {
      details: {
        collection,
        bound: { model: binding.model, fingerprint: binding.fingerprint },
        chunk_id: stranger.chunkId,
        fingerprint: stranger.modelFingerprint ?? null,
      },
    },
  );
}
