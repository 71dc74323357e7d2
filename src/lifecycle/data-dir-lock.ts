import { randomBytes } from "node:crypto";
import {
  linkSync,
  mkdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";

/** What a lock file says about the server holding DATA_DIR. */
export interface LockHolder {
  pid: number;
  host: string;
  started_at: string;
  /** Tells this acquisition apart from an earlier one with the same pid (a restarted container's pid 1). */
  token: string;
}

export interface DataDirLockOptions {
  host?: string;
  pid?: number;
  now?: () => number;
  /** How often the holder touches the file, so a lock from another host can be judged by its age. */
  heartbeatMs?: number;
  /** A lock not touched for this long is a dead server's (another host's, or a reused pid). */
  staleAfterMs?: number;
}

const LOCK_FILE = "rag-embed.lock";
const DEFAULT_HEARTBEAT_MS = 10_000;
const DEFAULT_STALE_AFTER_MS = 60_000;

/** Tokens of the locks this process holds: our own pid is alive, yet a lock it no longer holds is stale. */
const heldTokens = new Set<string>();

export class DataDirLockedError extends Error {
  override name = "DataDirLockedError";

  constructor(
    dataDir: string,
    readonly path: string,
    readonly holder: LockHolder,
  ) {
    super(
      `DATA_DIR ${dataDir} is in use by another rag-embed server: pid ${holder.pid} on host ${holder.host}, ` +
        `started ${holder.started_at}. Stop it, or give this server its own DATA_DIR; processes meant to share ` +
        `one queue run as ROLE=api and ROLE=worker (README, "One server per DATA_DIR"). If that server is ` +
        `gone and its host cannot tell (another host), its lock lapses a minute after it stopped, or delete ${path}.`,
    );
  }
}

/**
 * One server per DATA_DIR in the embedded mode: two would silently share one queue. The lock is a
 * file created atomically (a hard link of a fully written temporary file, so it is never seen half
 * written) naming pid, host and start time. A lock whose process is gone is taken over at once: on
 * this host by asking the kernel whether the pid runs; from another host (a shared volume) when its
 * heartbeat has stopped for `staleAfterMs`.
 */
export class DataDirLock {
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    readonly path: string,
    readonly holder: LockHolder,
    /** The dead server's lock this one replaced, if any. */
    readonly tookOver: LockHolder | undefined,
  ) {}

  static acquire(dataDir: string, options: DataDirLockOptions = {}): DataDirLock {
    mkdirSync(dataDir, { recursive: true });
    const now = options.now ?? Date.now;
    const path = join(dataDir, LOCK_FILE);
    const holder: LockHolder = {
      pid: options.pid ?? process.pid,
      host: options.host ?? hostname(),
      started_at: new Date(now()).toISOString(),
      token: randomBytes(8).toString("hex"),
    };
    const text = `${JSON.stringify(holder)}\n`;
    const tmp = `${path}.${holder.token}.tmp`;
    writeFileSync(tmp, text);
    let tookOver: LockHolder | undefined;
    try {
      // A few rounds: each either takes the lock, refuses, or removes one stale lock and tries again.
      for (let round = 0; round < 5; round++) {
        try {
          linkSync(tmp, path);
          heldTokens.add(holder.token);
          const lock = new DataDirLock(path, holder, tookOver);
          lock.startHeartbeat(options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
          return lock;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
        }
        const current = readLock(path);
        if (current === undefined) continue; // released in between
        if (current.holder && !isStale(current.holder, current.touchedAt, holder, now(), options)) {
          throw new DataDirLockedError(dataDir, path, current.holder);
        }
        if (removeIfUnchanged(path, current.text, `${path}.${holder.token}.stale`)) {
          tookOver = current.holder;
        }
      }
    } finally {
      unlinkSync(tmp);
    }
    throw new Error(`could not take ${path}: other servers keep replacing it`);
  }

  /** Removes the lock if it is still ours (an operator may have deleted it, another server taken it). */
  release(): void {
    if (this.timer) clearInterval(this.timer);
    heldTokens.delete(this.holder.token);
    if (readLock(this.path)?.holder?.token === this.holder.token) unlinkSync(this.path);
  }

  private startHeartbeat(intervalMs: number): void {
    this.timer = setInterval(() => {
      try {
        const at = new Date();
        utimesSync(this.path, at, at);
      } catch {
        // Deleted by hand: nothing to keep fresh; the next server to start will create its own.
      }
    }, intervalMs);
    this.timer.unref();
  }
}

/** Whether DATA_DIR belongs to one server: the embedded mode (ROLE=all, SQLite queue). */
export function dataDirIsExclusive(settings: { role: string; queueUrl?: string | undefined }): boolean {
  return settings.role === "all" && !settings.queueUrl;
}

function readLock(
  path: string,
): { text: string; holder: LockHolder | undefined; touchedAt: number } | undefined {
  try {
    const text = readFileSync(path, "utf8");
    const touchedAt = statSync(path).mtimeMs;
    return { text, holder: parseHolder(text), touchedAt };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockHolder>;
    if (typeof value.pid === "number" && typeof value.host === "string" && typeof value.token === "string") {
      return { pid: value.pid, host: value.host, started_at: String(value.started_at), token: value.token };
    }
  } catch {
    // not a lock this program wrote: treated as stale below
  }
  return undefined;
}

/** Whether `holder`'s server is gone, seen from `self` at `now`. */
export function isStale(
  holder: LockHolder,
  touchedAt: number,
  self: Pick<LockHolder, "pid" | "host">,
  now: number,
  options: Pick<DataDirLockOptions, "staleAfterMs"> = {},
): boolean {
  const silent = now - touchedAt > (options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS);
  if (holder.host !== self.host) return silent;
  if (holder.pid === self.pid) return !heldTokens.has(holder.token);
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return true;
  }
  // The pid runs; if the lock has not been touched for long, the pid belongs to another program now.
  return silent;
}

/**
 * Moves the stale lock aside and deletes it, unless what was moved is no longer the lock judged stale
 * (another server took it over in between): then it is put back, and the caller looks again.
 */
function removeIfUnchanged(path: string, staleText: string, aside: string): boolean {
  try {
    renameSync(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
  if (readFileSync(aside, "utf8") === staleText) {
    unlinkSync(aside);
    return true;
  }
  try {
    linkSync(aside, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  unlinkSync(aside);
  return false;
}
