/**
 * Where the versions of a collection live in Qdrant (see domain/collection-versions.ts for the names
 * clients see). Qdrant moves a name from one collection to another only through an alias, and an
 * alias cannot have the name of a collection. So a collection this server creates under a client's
 * name (`docs`) is the physical collection `docs__v1` reached through the alias `docs`; its later
 * versions (`docs__v2`, ...) are physical collections under their own names, and a cutover points the
 * alias at one of them. Every call by `docs` follows the alias (Qdrant resolves aliases for reads,
 * writes, searches and collection info).
 *
 * A collection created before versions existed is a physical collection named `docs`: it is read and
 * written as before, and it is still version 1 (`docs`), but its name cannot become an alias until it
 * has moved to `docs__v1` (README: "Qdrant collections made before versions").
 */
import { logicalName } from "../../domain/collection-versions.js";

/** The physical collection holding version 1 of a collection this server created under `logical`. */
export function firstVersionCollection(logical: string): string {
  return `${logical}__v1`;
}

/** `docs__v2` and later: a physical collection under its own name, never created behind an alias. */
export function isLaterVersion(name: string): boolean {
  return logicalName(name) !== name;
}

/** Whether `physical` holds a version of the collection named `alias` (`docs__v1`, `docs__v2`, ...). */
export function isOwnVersion(alias: string, physical: string): boolean {
  return physical === firstVersionCollection(alias) || logicalName(physical) === alias;
}

/**
 * The physical collection a version of `alias` is, when `version` names one (`docs` itself is its
 * version 1); undefined for any other collection.
 */
export function ownVersionCollection(alias: string, version: string): string | undefined {
  if (version === alias) return firstVersionCollection(alias);
  return isLaterVersion(version) && logicalName(version) === alias ? version : undefined;
}

/** The version name clients know for the physical collection `alias` reaches: `docs__v1` is `docs`. */
export function versionNameOf(alias: string, physical: string): string {
  return physical === firstVersionCollection(alias) ? alias : physical;
}

/**
 * A scroll cursor as the opaque string of ChunkScanPage: Qdrant's next point id, a UUID or an
 * unsigned integer (foreign points); UUIDs are never all digits.
 */
export function cursorOf(id: string | number): string {
  return String(id);
}

export function pointIdOfCursor(cursor: string): string | number {
  return /^[0-9]+$/.test(cursor) ? Number(cursor) : cursor;
}
