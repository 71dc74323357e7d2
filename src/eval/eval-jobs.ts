import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { RagEmbedClient } from "../client/index.js";
import type { JobCounts } from "../client/types.js";

/** The largest receipt page the jobs endpoint serves. */
const RECEIPT_PAGE = 1000;
/** How often a progress line is printed while jobs run. */
const PROGRESS_EVERY_MS = 10_000;

export interface JobsDone {
  /** The counts of every job, summed. */
  totals: JobCounts;
  /** Chunks whose receipt says `truncated` (over the model's token limit). */
  truncated: number;
}

function emptyCounts(): JobCounts {
  return {
    total: 0,
    queued: 0,
    running: 0,
    stored: 0,
    unchanged: 0,
    superseded: 0,
    failed: 0,
    dead: 0,
    discarded: 0,
    cancelled: 0,
  };
}

/**
 * Waits until every job is done, printing stored/total chunks now and then; throws when a job ends
 * with a chunk not stored (a dead letter, a superseded copy): the score would be of a partial corpus.
 */
export async function waitForJobs(
  client: RagEmbedClient,
  jobIds: readonly string[],
  log: (line: string) => void,
): Promise<JobsDone> {
  const latest = new Map<string, JobCounts>();
  const pending = new Set(jobIds);
  const totals = emptyCounts();
  let truncated = 0;
  let lastReport = performance.now();
  while (pending.size > 0) {
    for (const id of [...pending]) {
      const job = await client.job(id, { limit: 1 });
      latest.set(id, job.counts);
      if (job.state !== "done") continue;
      pending.delete(id);
      if (job.counts.stored !== job.counts.total || job.failures.length > 0) {
        throw new Error(
          `Job ${id} ended with ${JSON.stringify(job.counts)}: ${JSON.stringify(job.failures).slice(0, 1000)}`,
        );
      }
      for (const key of Object.keys(totals) as Array<keyof JobCounts>) totals[key] += job.counts[key];
      truncated += await countTruncated(client, id);
    }
    if (pending.size === 0) break;
    if (performance.now() - lastReport > PROGRESS_EVERY_MS) {
      lastReport = performance.now();
      let stored = 0;
      let total = 0;
      for (const counts of latest.values()) {
        stored += counts.stored;
        total += counts.total;
      }
      log(`  ${stored}/${total} chunks stored, ${jobIds.length - pending.size}/${jobIds.length} jobs done`);
    }
    await sleep(250);
  }
  return { totals, truncated };
}

/** Chunks of a finished job that were truncated, read from its receipts (the server's own record). */
async function countTruncated(client: RagEmbedClient, jobId: string): Promise<number> {
  let truncated = 0;
  let cursor: number | null = null;
  do {
    const page = await client.job(jobId, {
      limit: RECEIPT_PAGE,
      ...(cursor === null ? {} : { after: cursor }),
    });
    truncated += page.chunks.filter((receipt) => receipt.truncated).length;
    cursor = page.next_cursor;
  } while (cursor !== null);
  return truncated;
}
