import type { StoredJobCounters } from "../job-counts.js";
import type { QueueStatements } from "./queue-statements.js";

export type ChunkTransition =
  | "queued>running"
  | "running>queued"
  | "running>stored"
  | "running>unchanged"
  | "running>dead"
  | "dead>queued"
  | "dead>discarded";

/** Changes to one job's counters (its total never changes). */
type JobDelta = Omit<StoredJobCounters, "total">;

/**
 * Collects the counter changes of one transaction and writes them once per job, so a batch of
 * 100 acks costs one UPDATE per job instead of 100. Must be flushed inside the transaction that
 * changed the chunk rows, or the counters drift from the rows.
 */
export class CounterDeltas {
  private readonly jobs = new Map<string, JobDelta>();
  private pending = 0;
  private pendingTokens = 0;
  private running = 0;
  private dead = 0;

  record(jobId: string, transition: ChunkTransition, estTokens: number): void {
    let job = this.jobs.get(jobId);
    if (job === undefined) {
      job = { queued: 0, running: 0, stored: 0, unchanged: 0, dead: 0, discarded: 0 };
      this.jobs.set(jobId, job);
    }
    switch (transition) {
      case "queued>running":
        job.queued -= 1;
        job.running += 1;
        this.running += 1;
        return;
      case "running>queued":
        job.running -= 1;
        job.queued += 1;
        this.running -= 1;
        return;
      case "running>stored":
      case "running>unchanged":
      case "running>dead":
        job.running -= 1;
        if (transition === "running>stored") job.stored += 1;
        else if (transition === "running>unchanged") job.unchanged += 1;
        else {
          job.dead += 1;
          this.dead += 1;
        }
        this.running -= 1;
        this.pending -= 1;
        this.pendingTokens -= estTokens;
        return;
      case "dead>queued":
        job.dead -= 1;
        job.queued += 1;
        this.dead -= 1;
        this.pending += 1;
        this.pendingTokens += estTokens;
        return;
      case "dead>discarded":
        job.dead -= 1;
        job.discarded += 1;
        this.dead -= 1;
        return;
    }
  }

  flush(statements: QueueStatements, now: number): void {
    for (const [jobId, d] of this.jobs) {
      statements.addJobCounts.run(
        d.queued,
        d.running,
        d.stored,
        d.unchanged,
        d.dead,
        d.discarded,
        now,
        jobId,
      );
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
