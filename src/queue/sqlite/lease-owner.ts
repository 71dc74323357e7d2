import { randomBytes } from "node:crypto";
import { hostname } from "node:os";

/**
 * Tells this process apart from an earlier one that had the same pid on the same host: a container
 * restarted with the same hostname runs its server as pid 1 again.
 */
const PROCESS_TOKEN = randomBytes(4).toString("hex");

/** Owner of a lease, `${hostname}:${pid}:${token}`, so a restarted process can tell which leases are orphans. */
export function defaultLeaseOwner(): string {
  return `${hostname()}:${process.pid}:${PROCESS_TOKEN}`;
}

/**
 * True only when the owner ran on this host and its process is gone: its pid is not running, or it
 * is our own pid with another process token (that process ended before we started). Anything we
 * cannot prove dead (another host, a live pid, EPERM, an owner string we did not write) keeps its
 * lease until expiry. Owners written before the token existed (`host:pid`) are still understood.
 */
export function isOrphanedOwner(
  owner: string,
  localHost: string = hostname(),
  self: { pid: number; token: string } = { pid: process.pid, token: PROCESS_TOKEN },
): boolean {
  const parts = owner.split(":");
  const last = parts[parts.length - 1] ?? "";
  const token = parts.length >= 3 && /^[0-9a-f]{8}$/.test(last) ? parts.pop() : undefined;
  const pidText = parts.pop() ?? "";
  if (parts.length === 0 || parts.join(":") !== localHost) return false;
  if (!/^[1-9][0-9]*$/.test(pidText)) return false;
  const pid = Number(pidText);
  if (pid === self.pid) return token !== undefined && token !== self.token;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ESRCH";
  }
}
