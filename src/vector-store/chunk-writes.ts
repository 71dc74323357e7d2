import { pointId } from "../domain/ids.js";
import type { VectorRecord } from "../domain/types.js";
import type { ChunkWrite, ChunkWriteResult } from "./vector-store.js";

/** The record that carries a chunk's fingerprint: its unsplit point, or window 0. */
export function isFingerprintRecord(record: VectorRecord): boolean {
  return record.windowIndex === null || record.windowIndex === 0;
}

/** The client's chunk id every point of a chunk is grouped under. */
export function groupOf(record: VectorRecord): string {
  return record.parentChunkId ?? record.chunkId;
}

/** The id of a chunk's fingerprint point, where a store reads its version back. */
export function fingerprintId(collection: string, write: ChunkWrite): string {
  return pointId(collection, write.chunkId);
}

/**
 * What every adapter relies on: a points write has exactly one fingerprint record, under the chunk's
 * own point id, and every record belongs to the chunk and carries the write's version. A mistake
 * here would version or clean up the wrong points, so it fails the call before anything is written.
 */
export function checkWrites(collection: string, writes: readonly ChunkWrite[]): void {
  for (const write of writes) {
    if (write.kind !== "points") continue;
    const fingerprints = write.records.filter(isFingerprintRecord);
    if (fingerprints.length !== 1 || fingerprints[0]?.id !== fingerprintId(collection, write)) {
      throw new Error(
        `points write of chunk ${JSON.stringify(write.chunkId)} needs exactly one record with the chunk's own point id and window index null or 0`,
      );
    }
    for (const record of write.records) {
      if (record.version !== write.version || groupOf(record) !== write.chunkId) {
        throw new Error(
          `record ${JSON.stringify(record.chunkId)} does not belong to version ${write.version} of chunk ${JSON.stringify(write.chunkId)}`,
        );
      }
    }
  }
}

/**
 * Window points first, the fingerprint point last: a store that writes them in several steps and
 * stops half way leaves the old fingerprint, so the retry re-embeds instead of reading "unchanged".
 */
export function windowsFirst(records: readonly VectorRecord[]): VectorRecord[] {
  return [...records.filter((r) => !isFingerprintRecord(r)), ...records.filter(isFingerprintRecord)];
}

/** What a write achieved, judged from the chunk's fingerprint point as read back after it. */
export function writeResult(
  write: ChunkWrite,
  stored: { version: number | null; contentHash: string } | undefined,
): ChunkWriteResult {
  if (stored?.version == null) return "changed";
  if (stored.version > write.version) return "superseded";
  if (
    stored.version === write.version &&
    (write.kind === "points" || stored.contentHash === write.contentHash)
  )
    return "written";
  return "changed";
}

/**
 * Splits writes into rounds in which each chunk id appears once, keeping input order. A store that
 * batches one round into shared requests then never sees two versions of a chunk in one request,
 * where the version check would be judged against the state before both.
 */
export function rounds<T extends { chunkId: string }>(
  writes: readonly T[],
): Array<Array<{ index: number; write: T }>> {
  const result: Array<Array<{ index: number; write: T }>> = [];
  const seen = new Map<string, number>();
  writes.forEach((write, index) => {
    const round = seen.get(write.chunkId) ?? 0;
    seen.set(write.chunkId, round + 1);
    const entries = result[round] ?? [];
    entries.push({ index, write });
    result[round] = entries;
  });
  return result;
}
