import { type Job, type RagEmbedClient, RagEmbedError } from "../client/index.js";
import { backoffMs, sleep } from "../client/retry.js";

/** What a job has settled: stored or unchanged (in the store), dead, discarded. */
export interface Settled {
  stored: number;
  dead: number;
  discarded: number;
}

export interface WaitOptions {
  signal: AbortSignal;
  /** Give up when nothing settles for this long (server gone, or stuck). */
  stallTimeoutMs: number;
  pollMs?: number;
  /** After each successful round of polls. */
  onTick: () => void;
  /** The server stopped answering (restart, failover, overload), or answers with another reason. */
  onUnavailable: (reason: string) => void;
  /** It answers again. */
  onBack: () => void;
}

export interface WaitResult {
  /** The last state seen of every job (a job never seen is missing). */
  jobs: Job[];
  /** True when waiting stopped at the stall timeout with work still pending. */
  timedOut: boolean;
}

/**
 * Answers that end when the server is back: no connection (restart, failover), 502/504 from a
 * balancer, 503 while it drains or loads, 429. Anything else is a real error.
 */
export function isTransient(error: RagEmbedError): boolean {
  return error.status === 0 || [429, 502, 503, 504].includes(error.status);
}

/** Follows the jobs of one ingest: how much is settled, and waiting for all of them. */
export class JobTracker {
  private readonly latest = new Map<string, Job>();

  constructor(private readonly client: RagEmbedClient) {}

  settled(): Settled {
    const sum: Settled = { stored: 0, dead: 0, discarded: 0 };
    for (const job of this.latest.values()) {
      sum.stored += job.counts.stored + job.counts.unchanged;
      sum.dead += job.counts.dead;
      sum.discarded += job.counts.discarded;
    }
    return sum;
  }

  /** Refreshes up to `limit` unfinished jobs, oldest first, stopping at the first still running. */
  async poll(jobIds: readonly string[], signal?: AbortSignal, limit = 10): Promise<void> {
    const open = jobIds.filter((id) => this.latest.get(id)?.state !== "done").slice(0, limit);
    for (const id of open) {
      const job = await this.client.job(id, { limit: 1 }, signal);
      this.latest.set(id, job);
      if (job.state !== "done") break;
    }
  }

  /**
   * Polls until every job is done. A restart or failover does not end the wait: transient answers
   * are retried with backoff; only `stallTimeoutMs` without anything settling does.
   */
  async waitAll(jobIds: readonly string[], options: WaitOptions): Promise<WaitResult> {
    const settledCount = () => {
      const s = this.settled();
      return s.stored + s.dead + s.discarded;
    };
    let lastCount = settledCount();
    let lastProgress = Date.now();
    let failures = 0;
    let unavailable: string | undefined;
    for (;;) {
      if (jobIds.every((id) => this.latest.get(id)?.state === "done")) return this.result(jobIds, false);
      let waitMs = options.pollMs ?? 250;
      try {
        await this.poll(jobIds, options.signal, jobIds.length);
        failures = 0;
        if (unavailable !== undefined) options.onBack();
        unavailable = undefined;
        options.onTick();
      } catch (error) {
        if (!(error instanceof RagEmbedError) || !isTransient(error)) throw error;
        waitMs = backoffMs(failures, 500, 10_000);
        failures += 1;
        // Said once per reason, not once per retry: a restart is a handful of retries.
        const reason = error.status === 0 ? "no connection" : `${error.status} ${error.code}`;
        if (reason !== unavailable) options.onUnavailable(reason);
        unavailable = reason;
      }
      const count = settledCount();
      if (count !== lastCount) {
        lastCount = count;
        lastProgress = Date.now();
      } else if (Date.now() - lastProgress >= options.stallTimeoutMs) {
        return this.result(jobIds, true);
      }
      await sleep(waitMs, options.signal);
    }
  }

  private result(jobIds: readonly string[], timedOut: boolean): WaitResult {
    return { jobs: jobIds.flatMap((id) => this.latest.get(id) ?? []), timedOut };
  }
}
