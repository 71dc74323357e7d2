import { versionName, versionOf } from "../domain/collection-versions.js";
import type { CollectionDescription, VectorStore } from "../vector-store/vector-store.js";

/**
 * The version after the one `collection`'s name reaches, when it exists: the one a re-embed builds
 * (or built: until a cutover). Null when there is none, or the store keeps no versions.
 */
export async function nextVersion(
  store: Pick<VectorStore, "resolveAlias" | "describeCollection">,
  collection: string,
): Promise<{ name: string; description: CollectionDescription } | null> {
  if (store.resolveAlias === undefined) return null;
  const active = await store.resolveAlias(collection);
  const name = versionName(collection, versionOf(active) + 1);
  const description = await store.describeCollection(name);
  return description === null ? null : { name, description };
}
