/**
 * How far the queue's storage can be trusted to keep what was accepted with a 202. Reported in
 * GET /v1/status and logged at start-up, so a misconfigured engine is never silent.
 */
export interface DurabilityReport {
  queue: "sqlite" | "redis";
  /** Every setting durability depends on could be read, so `problems` is the full verdict. */
  verified: boolean;
  /**
   * The worst problem: `error` = accepted chunks can be lost or evicted; `warning` = a window of
   * loss on a crash (up to a second), or settings that could not be read; `ok` = none.
   */
  severity: "ok" | "warning" | "error";
  /** One sentence each: what is wrong, what it can cost, what to set. */
  problems: string[];
}

/** The embedded queue: WAL with synchronous=FULL, committed before the 202; nothing to configure. */
export const SQLITE_DURABILITY: DurabilityReport = {
  queue: "sqlite",
  verified: true,
  severity: "ok",
  problems: [],
};
