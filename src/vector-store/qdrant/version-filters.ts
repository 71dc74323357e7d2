import type { QdrantCondition, QdrantFilter } from "./qdrant-filter.js";
import { RAG_KEY, VERSION_KEY } from "./qdrant-payload.js";

/**
 * Points whose stored version is older than `version`; a point without one (written before versions
 * existed) counts as older.
 */
export function olderThan(version: number): QdrantFilter {
  return { should: [{ key: VERSION_KEY, range: { lt: version } }, { is_empty: { key: VERSION_KEY } }] };
}

/**
 * The `update_filter` of an upsert: each existing point is replaced only when its stored version is
 * older than the one written to it. One clause per version (a chunk's points share theirs), so the
 * points of many chunks travel in one request.
 */
export function updateFilter(points: ReadonlyArray<{ id: string; version: number }>): QdrantFilter {
  const idsByVersion = new Map<number, string[]>();
  for (const { id, version } of points) {
    const ids = idsByVersion.get(version) ?? [];
    ids.push(id);
    idsByVersion.set(version, ids);
  }
  return {
    should: [...idsByVersion].map(([version, ids]) => ({ must: [{ has_id: ids }, olderThan(version)] })),
  };
}

/** The points of one chunk (all its windows) with this content hash and a version older than `version`. */
export function touchable(chunkId: string, contentHash: string, version: number): QdrantCondition[] {
  return [
    { key: `${RAG_KEY}.group_id`, match: { value: chunkId } },
    { key: `${RAG_KEY}.content_hash`, match: { value: contentHash } },
    olderThan(version),
  ];
}

/** The points of these chunks older than each chunk's fingerprint version: left-overs to delete. */
export function staleGroupPoints(groups: ReadonlyArray<{ chunkId: string; version: number }>): QdrantFilter {
  return {
    should: groups.map(({ chunkId, version }) => ({
      must: [{ key: `${RAG_KEY}.group_id`, match: { value: chunkId } }, olderThan(version)],
    })),
  };
}
