/** A Qdrant collection's vector shape: read from its info, and compared with what a caller asks for. */
import type { Schemas } from "@qdrant/js-client-rest";
import { AppError } from "../../domain/errors.js";
import type { Distance } from "../../domain/types.js";

export interface CollectionShape {
  dimension: number;
  distance: Distance;
}

export function shapeOf(collection: string, info: Schemas["CollectionInfo"]): CollectionShape {
  const vectors = info.config.params.vectors as unknown;
  if (
    typeof vectors === "object" &&
    vectors !== null &&
    typeof (vectors as { size?: unknown }).size === "number" &&
    typeof (vectors as { distance?: unknown }).distance === "string"
  ) {
    const { size, distance } = vectors as { size: number; distance: string };
    return { dimension: size, distance: distance as Distance };
  }
  throw new AppError(
    "dimension_mismatch",
    `Collection "${collection}" exists with named vectors ${JSON.stringify(vectors)}; this server writes one unnamed vector per point. Use another collection name.`,
    { details: { collection, vectors } },
  );
}

export function compareShapes(collection: string, existing: CollectionShape, wanted: CollectionShape): void {
  if (existing.dimension === wanted.dimension && existing.distance === wanted.distance) return;
  throw new AppError(
    "dimension_mismatch",
    `Collection "${collection}" exists with dimension ${existing.dimension} and distance ${existing.distance}; ` +
      `requested dimension ${wanted.dimension} and distance ${wanted.distance}. Use another collection name or delete it first.`,
    { details: { collection, existing, requested: wanted } },
  );
}
