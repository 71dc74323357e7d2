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
