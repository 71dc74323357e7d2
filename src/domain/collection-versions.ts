/**
 * Versions of a collection (blue/green re-embedding). A client names a collection by its logical
 * name (`docs`); its vectors live in a physical collection the name resolves to through the store's
 * alias. Version 1 is the logical name itself, so every collection made before versions existed is
 * its own v1 and nothing moves; later versions are `docs__v2`, `docs__v3`, ...
 */

const VERSION_SUFFIX = /^(.+)__v([0-9]+)$/;

/** The physical name of version `version` (>= 1) of `logical`. */
export function versionName(logical: string, version: number): string {
  return version <= 1 ? logical : `${logical}__v${version}`;
}

/** The version a physical name holds: N for `x__vN` (N >= 2), else 1. */
export function versionOf(physical: string): number {
  const match = VERSION_SUFFIX.exec(physical);
  const version = match ? Number(match[2]) : 1;
  return version >= 2 ? version : 1;
}

/**
 * The logical collection a physical name is a version of (`docs__v2` → `docs`; any other name is its
 * own). Point ids derive from it, so a chunk has the same point id in every version of its collection.
 */
export function logicalName(physical: string): string {
  const match = VERSION_SUFFIX.exec(physical);
  return match && Number(match[2]) >= 2 ? (match[1] as string) : physical;
}
