import type { StoredJobCounters } from "../job-counts.js";
import type { CountersRow, QueueStatements } from "./queue-statements.js";
import type { RowState } from "./row-state.js";

/** Changes to one job's counters (its total never changes). */
type JobDelta = Omit<StoredJobCounters, "total">;

/** The job counter a row state counts in: a waiting retry is still queued work. */
function jobCounter(state: RowState): keyof JobDelta {
  return state === "retrying" ? "queued" : state;
}

function isPending(state: RowState): boolean {
  return state === "queued" || state === "retrying" || state === "running";
}

function emptyDelta(): JobDelta {
  return {
    queued: 0,
    running: 0,
    stored: 0,
    unchanged: 0,
    superseded: 0,
    dead: 0,
    discarded: 0,
    cancelled: 0,
  };
}

/**
 * Collects the counter changes of one transaction and writes them once per job, so a batch of
 * 100 acks costs one UPDATE per job instead of 100. Any state may move to any other: the counters
 * follow from the two states alone. Must be flushed inside the transaction that changed the chunk
 * rows, or the counters drift from the rows.
 */
export class CounterDeltas {
  private readonly jobs = new Map<string, JobDelta>();
  private pending = 0;
  private pendingTokens = 0;
  private running = 0;
  private dead = 0;

  record(jobId: string, from: RowState, to: RowState, estTokens: number): void {
    if (from === to) return;
    let job = this.jobs.get(jobId);
    if (job === undefined) {
      job = emptyDelta();
      this.jobs.set(jobId, job);
    }
    job[jobCounter(from)] -= 1;
    job[jobCounter(to)] += 1;
    const pendingChange = Number(isPending(to)) - Number(isPending(from));
    this.pending += pendingChange;
    this.pendingTokens += pendingChange * estTokens;
    this.running += Number(to === "running") - Number(from === "running");
    this.dead += Number(to === "dead") - Number(from === "dead");
  }

  flush(statements: QueueStatements, now: number): void {
    for (const [jobId, d] of this.jobs) {
      statements.addJobCounts.run({ ...d, now, id: jobId });
    }
    if (this.pending !== 0 || this.pendingTokens !== 0 || this.running !== 0 || this.dead !== 0) {
      statements.addGlobalCounts.run(this.pending, this.pendingTokens, this.running, this.dead);
    }
    this.jobs.clear();
    this.pending = 0;
    this.pendingTokens = 0;
    this.running = 0;
    this.dead = 0;
  }
}

/** The queue-wide counters (one row, created with the schema). */
export function readCounters(sql: QueueStatements): CountersRow {
  const row = sql.counters.get();
  if (row === undefined) throw new Error("queue_counters row is missing");
  return row;
}
