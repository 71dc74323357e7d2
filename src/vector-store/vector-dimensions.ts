import { AppError } from "../domain/errors.js";
import type { VectorRecord } from "../domain/types.js";

/** Every store refuses a whole upsert, before writing anything, if one vector has the wrong size. */
export function assertVectorDimensions(collection: string, records: VectorRecord[], dimension: number): void {
  for (const record of records) {
    if (record.vector.length !== dimension) {
      throw new AppError(
        "dimension_mismatch",
        `Vector for chunk ${JSON.stringify(record.chunkId)} has ${record.vector.length} dimensions; collection "${collection}" expects ${dimension}`,
        {
          details: { collection, expected: dimension, actual: record.vector.length, chunkId: record.chunkId },
        },
      );
    }
  }
}

/** The checks every store makes before a search: a sane top-k and a query vector of the right size. */
export function assertTopK(topK: number): void {
  if (!Number.isInteger(topK) || topK < 1) {
    throw new AppError("invalid_request", `topK must be a positive integer, got ${topK}`, {
      details: { topK },
    });
  }
}

export function assertQueryDimension(collection: string, vector: Float32Array, dimension: number): void {
  if (vector.length !== dimension) {
    throw new AppError(
      "dimension_mismatch",
      `Query vector has ${vector.length} dimensions; collection "${collection}" expects ${dimension}`,
      { details: { collection, expected: dimension, actual: vector.length } },
    );
  }
}
