import type { Job } from "../client/index.js";

/** The end of a `rag-embed ingest` run, printed as text or (--json) as this object. */
export interface Summary {
  input: string;
  collection: string;
  resumed_from_record: number;
  records_read: number;
  requests: number;
  accepted: number;
  accepted_total: number;
  skipped_empty: number;
  jobs: number;
  stored: number;
  unchanged: number;
  /** Dead letters: chunks whose retries ran out. */
  dead: number;
  discarded: number;
  /** Accepted but not yet stored, unchanged, dead or discarded; 0 unless --no-wait or timed out. */
  pending: number;
  /** Waiting gave up at --timeout with chunks pending. */
  timed_out: boolean;
  failures: Array<{ chunk_id: string; reason: string; job_id: string }>;
}

/** What a run did, from the jobs as last seen (none when not waited for) and the run's own counts. */
export function summarize(
  jobs: Job[],
  base: Omit<Summary, "stored" | "unchanged" | "dead" | "discarded" | "pending" | "failures">,
): Summary {
  const summary: Summary = {
    ...base,
    stored: 0,
    unchanged: 0,
    dead: 0,
    discarded: 0,
    pending: 0,
    failures: [],
  };
  for (const job of jobs) {
    summary.stored += job.counts.stored;
    summary.unchanged += job.counts.unchanged;
    summary.dead += job.counts.dead;
    summary.discarded += job.counts.discarded;
    for (const f of job.failures)
      summary.failures.push({ chunk_id: f.chunk_id, reason: f.reason, job_id: job.id });
  }
  // Counted from what was accepted: a job never seen (the server was away) is pending too.
  summary.pending = Math.max(
    0,
    base.accepted_total - summary.stored - summary.unchanged - summary.dead - summary.discarded,
  );
  return summary;
}

/** The summary as the lines a person reads (--json prints the Summary itself). */
export function renderSummary(s: Summary, newJobs: number, waited: boolean): string {
  const lines = [
    `Input:       ${s.input} → collection '${s.collection}'`,
    s.resumed_from_record > 0
      ? `Resumed:     skipped ${s.resumed_from_record} record(s) acknowledged by an earlier run`
      : "Resumed:     no (started from the beginning)",
    `Sent:        ${s.accepted} chunk(s) in ${s.requests} request(s) (${newJobs} new job(s)); ${s.accepted_total} acknowledged in all`,
  ];
  if (s.skipped_empty > 0) lines.push(`Skipped:     ${s.skipped_empty} record(s) with empty text`);
  if (waited) {
    lines.push(
      `Result:      ${s.stored} stored, ${s.unchanged} unchanged, ${s.dead} dead${s.discarded ? `, ${s.discarded} discarded` : ""}${s.pending ? `, ${s.pending} still pending` : ""} (${s.jobs} job(s))`,
    );
    const byReason = new Map<string, string[]>();
    for (const f of s.failures) byReason.set(f.reason, [...(byReason.get(f.reason) ?? []), f.chunk_id]);
    for (const [reason, ids] of byReason) {
      lines.push(`  dead ×${ids.length}: ${reason} (e.g. ${ids.slice(0, 5).join(", ")})`);
    }
    if (s.dead > 0)
      lines.push("  Dead letters can be replayed once the cause is fixed: POST /v1/dead-letters/replay");
  } else {
    lines.push(`Jobs:        not waited for (--no-wait); checkpoint kept`);
  }
  return `${lines.join("\n")}\n`;
}
