import { ProcessingError } from "../../domain/errors.js";

/**
 * The first Qdrant release whose upserts honour `update_filter` (Qdrant's "Update if", #7006). Older
 * servers accept the field and ignore it, so older versions would silently overwrite newer ones.
 */
const MIN_VERSION = [1, 15, 4] as const;

/**
 * Refuses a Qdrant too old for versioned writes, permanently (its chunks become dead letters, to be
 * replayed once Qdrant is upgraded). A version that is not x.y.z (a development build) is let through.
 */
export function assertVersionedWrites(version: string): void {
  const match = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (match === null) return;
  const parts = match.slice(1).map(Number);
  for (const [index, minimum] of MIN_VERSION.entries()) {
    const part = parts[index] ?? 0;
    if (part > minimum) return;
    if (part < minimum) {
      throw new ProcessingError(
        `Qdrant ${version} is too old: versioned writes need update_filter on upserts, which Qdrant ` +
          `${MIN_VERSION.join(".")} and later honour (older servers ignore it). Upgrade Qdrant, then replay the dead letters.`,
        { retryable: false },
      );
    }
  }
}
