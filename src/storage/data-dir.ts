import { accessSync, constants, existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";

/**
 * Why `dir` cannot be written, or undefined when it can: it (or, when it does not exist yet, the
 * nearest parent that does) refuses writes (permissions, a read-only mount).
 */
export function unwritableReason(dir: string): string | undefined {
  let existing = dir;
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  try {
    accessSync(existing, constants.W_OK);
    return undefined;
  } catch (error) {
    const code = (error as { code?: string }).code;
    return existing === dir
      ? `DATA_DIR ${dir} is not writable (${code})`
      : `DATA_DIR ${dir} cannot be created: ${existing} is not writable (${code})`;
  }
}

/**
 * Creates DATA_DIR if needed; a directory that cannot be written fails the start at once, naming
 * it, before anything else tries to write there and fails with a bare EROFS or "unable to open
 * database file".
 */
export function assertWritableDataDir(dir: string): void {
  const reason = unwritableReason(dir);
  if (reason !== undefined) {
    throw new Error(
      `${reason}. Point DATA_DIR at a writable directory, or fix its permissions or its mount.`,
    );
  }
  mkdirSync(dir, { recursive: true });
}
