import { hostname } from "node:os";

/** Owner of a lease, `${hostname}:${pid}`, so a restarted process can tell which leases are orphans. */
export function defaultLeaseOwner(): string {
  return `${hostname()}:${process.pid}`;
}

/**
 * True only when the owner ran on this host and its process is gone. Anything we cannot prove dead
 * (another host, a live pid, EPERM, an owner string we did not write) keeps its lease until expiry.
 */
export function isOrphanedOwner(owner: string, localHost: string = hostname()): boolean {
  const colon = owner.lastIndexOf(":");
  if (colon <= 0) return false;
  if (owner.slice(0, colon) !== localHost) return false;
  const pidText = owner.slice(colon + 1);
  if (!/^[1-9][0-9]*$/.test(pidText)) return false;
  const pid = Number(pidText);
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ESRCH";
  }
}
