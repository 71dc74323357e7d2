import type { JobCounts, JobState } from "../domain/types.js";

/** A job's counters as both queues keep them: `queued` still includes chunks waiting for a retry. */
export interface StoredJobCounters {
  total: number;
  queued: number;
  running: number;
  stored: number;
  unchanged: number;
  superseded: number;
  dead: number;
  discarded: number;
  cancelled: number;
}

/**
 * The counts a client sees, one per receipt state so they add up to `total`: a chunk whose last
 * attempt failed and that waits for its retry is `failed`, not `queued`.
 */
export function toJobCounts(stored: StoredJobCounters, retrying: number): JobCounts {
  const failed = Math.min(Math.max(0, retrying), stored.queued);
  return {
    total: stored.total,
    queued: stored.queued - failed,
    running: stored.running,
    stored: stored.stored,
    unchanged: stored.unchanged,
    superseded: stored.superseded,
    failed,
    dead: stored.dead,
    discarded: stored.discarded,
    cancelled: stored.cancelled,
  };
}

/** done: nothing left to do; running: something started or finished; queued: nothing yet. */
export function toJobState(stored: StoredJobCounters): JobState {
  if (stored.queued + stored.running === 0) return "done";
  const terminal =
    stored.stored + stored.unchanged + stored.superseded + stored.dead + stored.discarded + stored.cancelled;
  return stored.running > 0 || terminal > 0 ? "running" : "queued";
}
