import { statSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import cliProgress from "cli-progress";
import { type Job, type RagEmbedClient, RagEmbedError } from "../client/index.js";
import type { Chunk } from "../client/types.js";
import {
  CLIENT_FLAGS,
  CLIENT_FLAGS_USAGE,
  clientFrom,
  formatDuration,
  positiveInt,
  UsageError,
} from "./client-options.js";
import {
  checkpointMismatch,
  checkpointPathFor,
  type IngestCheckpoint,
  loadCheckpoint,
  removeCheckpoint,
  saveCheckpoint,
} from "./ingest-checkpoint.js";
import { formatFromPath, InputError, type InputFormat, readRecords } from "./input-reader.js";
import { recordToChunk } from "./record-to-chunk.js";

export const INGEST_USAGE = `Usage: rag-embed ingest FILE --collection NAME [options]

Streams a JSONL (one object per line) or CSV (with a header) file to the server in batches, shows
progress, waits for every job and prints what was stored. Resumable: after an interruption, run the
same command again and it continues after the last request the server acknowledged.

  --collection NAME     target collection (required)
  --format jsonl|csv    default: from the extension (.jsonl/.ndjson/.json → jsonl, .csv → csv)
  --id-field NAME       field holding the chunk id (default id)
  --text-field NAME     field holding the text to embed (default text)
  --document-field NAME field holding the document id (optional; used by delete-by-document)
  --no-metadata         do not send the other fields as metadata
  --batch-size N        chunks per request (default 256)
  --checkpoint PATH     progress file (default FILE.rag-embed-progress.json)
  --restart             ignore an existing checkpoint and start from the beginning
  --no-wait             do not wait for the jobs to finish
  --json                print the summary as JSON on stdout
${CLIENT_FLAGS_USAGE}

Exit status: 0 all stored; 1 some chunks are dead letters, or an error; 2 bad usage; 130 interrupted.`;

interface Summary {
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
  pending: number;
  failures: Array<{ chunk_id: string; reason: string; job_id: string }>;
}

export async function ingestCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...CLIENT_FLAGS,
      collection: { type: "string", short: "c" },
      format: { type: "string" },
      "id-field": { type: "string" },
      "text-field": { type: "string" },
      "document-field": { type: "string" },
      "no-metadata": { type: "boolean" },
      "batch-size": { type: "string" },
      checkpoint: { type: "string" },
      restart: { type: "boolean" },
      "no-wait": { type: "boolean" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${INGEST_USAGE}\n`);
    return 0;
  }
  const [file, ...extra] = positionals;
  if (file === undefined || extra.length > 0)
    throw new UsageError(`Give exactly one FILE.\n\n${INGEST_USAGE}`);
  const collection = values.collection;
  if (!collection) throw new UsageError("--collection is required");
  const input = resolve(file);
  let size: number;
  try {
    size = statSync(input).size;
  } catch {
    throw new UsageError(`Cannot read ${file}`);
  }
  const format = (values.format ?? formatFromPath(input)) as InputFormat | undefined;
  if (format !== "jsonl" && format !== "csv") {
    throw new UsageError(`Cannot tell the format of ${file}: pass --format jsonl or --format csv`);
  }
  const batchSize = positiveInt("batch-size", values["batch-size"], 256);
  const mapping = {
    idField: values["id-field"] ?? "id",
    textField: values["text-field"] ?? "text",
    documentField: values["document-field"],
    metadata: !values["no-metadata"],
  };
  const checkpointPath = resolve(values.checkpoint ?? checkpointPathFor(input));
  const client = clientFrom(values);
  const log = (line: string) => process.stderr.write(`${line}\n`);

  let checkpoint = values.restart ? undefined : loadCheckpoint(checkpointPath);
  if (checkpoint) {
    const why = checkpointMismatch(checkpoint, input, format, collection);
    if (why) {
      throw new UsageError(
        `The checkpoint ${checkpointPath} does not match this run: ${why}. Use --restart to start over.`,
      );
    }
    log(
      `Resuming after record ${checkpoint.records} (line ${checkpoint.line}, byte ${checkpoint.offset}): ` +
        `${checkpoint.accepted} chunks already acknowledged in ${checkpoint.job_ids.length} job(s).`,
    );
  }
  const stat = statSync(input);
  const state: IngestCheckpoint = checkpoint ?? {
    version: 1,
    input,
    input_size: stat.size,
    input_mtime_ms: stat.mtimeMs,
    format,
    collection,
    offset: 0,
    records: 0,
    line: 0,
    accepted: 0,
    skipped_empty: 0,
    job_ids: [],
    updated_at: new Date().toISOString(),
  };
  checkpoint = undefined;
  const resumedFrom = state.records;
  const startAccepted = state.accepted;
  const startJobs = state.job_ids.length;

  const controller = new AbortController();
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`\n${signal}: stopping; progress up to the last acknowledged request is in ${checkpointPath}`);
    controller.abort(new Error(signal));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const tracker = new JobTracker(client);
  const progress = new ProgressDisplay(size, state.offset, process.stderr.isTTY === true, log);
  const poller = setInterval(() => {
    void tracker.poll(state.job_ids).then(
      (tps) => progress.update(state.offset, state.accepted, tracker.settled(), tps),
      () => undefined,
    );
  }, 1000);
  poller.unref();

  let requests = 0;
  let recordsRead = 0;
  let batch: Chunk[] = [];
  let batchIds = new Set<string>();
  let position = { offset: state.offset, records: state.records, line: state.line };
  let skippedEmpty = 0;

  const flush = async () => {
    if (batch.length > 0) {
      const result = await client.ingest(collection, batch, {
        batchSize: batch.length,
        signal: controller.signal,
        onRetry: ({ status, code, waitMs }) =>
          progress.note(`server busy (${status} ${code}); retrying in ${formatDuration(waitMs / 1000)}`),
      });
      requests += 1;
      state.accepted += result.accepted;
      state.job_ids.push(...result.jobIds);
    }
    state.offset = position.offset;
    state.records = position.records;
    state.line = position.line;
    state.skipped_empty += skippedEmpty;
    skippedEmpty = 0;
    state.updated_at = new Date().toISOString();
    saveCheckpoint(checkpointPath, state);
    progress.update(state.offset, state.accepted, tracker.settled(), undefined);
    batch = [];
    batchIds = new Set();
  };

  try {
    try {
      for await (const record of readRecords(input, format, state)) {
        recordsRead += 1;
        const mapped = recordToChunk(record.value, mapping);
        if (!mapped.ok && mapped.reason === "invalid") {
          throw new InputError(`${file}:${record.line}: ${mapped.message}`);
        }
        if (mapped.ok) {
          const key = String(mapped.chunk.id);
          // The server refuses a request naming one id twice; the later record wins, in a later request.
          if (batchIds.has(key)) await flush();
          batch.push(mapped.chunk);
          batchIds.add(key);
        } else {
          skippedEmpty += 1;
        }
        position = { offset: record.endOffset, records: record.index, line: record.line };
        if (batch.length >= batchSize) await flush();
      }
      await flush();
    } catch (error) {
      progress.stop();
      if (interrupted) {
        log(`Interrupted: ${state.accepted} chunks acknowledged; run the same command again to continue.`);
        return 130;
      }
      if (error instanceof InputError || error instanceof RagEmbedError) {
        log(`rag-embed ingest: ${error.message}`);
        if (error instanceof RagEmbedError && error.details) log(JSON.stringify(error.details));
        log(`Progress up to the last acknowledged request is in ${checkpointPath}.`);
        return 1;
      }
      throw error;
    }

    let jobs: Job[] = [];
    if (!values["no-wait"]) {
      progress.note(
        `All ${state.accepted} chunks acknowledged; waiting for ${state.job_ids.length} job(s)...`,
      );
      try {
        jobs = await tracker.waitAll(state.job_ids, controller.signal, () =>
          progress.update(state.offset, state.accepted, tracker.settled(), undefined),
        );
      } catch (error) {
        progress.stop();
        if (interrupted) {
          log("Interrupted while waiting; the chunks are acknowledged and will be stored by the server.");
          return 130;
        }
        if (error instanceof RagEmbedError) {
          log(`rag-embed ingest: ${error.message}`);
          return 1;
        }
        throw error;
      }
    }
    progress.stop();
    const summary = summarize(jobs, {
      input,
      collection,
      resumed_from_record: resumedFrom,
      records_read: recordsRead,
      requests,
      accepted: state.accepted - startAccepted,
      accepted_total: state.accepted,
      skipped_empty: state.skipped_empty,
      jobs: state.job_ids.length,
    });
    if (!values["no-wait"]) removeCheckpoint(checkpointPath);
    if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else process.stdout.write(renderSummary(summary, state.job_ids.length - startJobs, !values["no-wait"]));
    return summary.dead > 0 ? 1 : 0;
  } finally {
    clearInterval(poller);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

function summarize(
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
    summary.pending += job.counts.queued + job.counts.running;
    for (const f of job.failures)
      summary.failures.push({ chunk_id: f.chunk_id, reason: f.reason, job_id: job.id });
  }
  return summary;
}

function renderSummary(s: Summary, newJobs: number, waited: boolean): string {
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
      `Result:      ${s.stored} stored, ${s.unchanged} unchanged, ${s.dead} dead${s.discarded ? `, ${s.discarded} discarded` : ""} (${s.jobs} job(s))`,
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

/** Follows the jobs this ingest created: how many chunks are settled, and waits for all at the end. */
class JobTracker {
  private readonly done = new Map<string, Job>();
  private readonly partial = new Map<string, number>();

  constructor(private readonly client: RagEmbedClient) {}

  settled(): number {
    let n = 0;
    for (const job of this.done.values()) n += job.counts.total;
    for (const v of this.partial.values()) n += v;
    return n;
  }

  /** Refreshes a few unfinished jobs; returns the server's tokens/s. */
  async poll(jobIds: readonly string[]): Promise<number | undefined> {
    const open = jobIds.filter((id) => !this.done.has(id)).slice(0, 10);
    for (const id of open) {
      const job = await this.client.job(id, { limit: 1 });
      this.record(job);
      if (job.state !== "done") break;
    }
    const status = await this.client.status();
    return status.throughput.tokens_per_second;
  }

  async waitAll(jobIds: readonly string[], signal: AbortSignal, tick: () => void): Promise<Job[]> {
    for (const id of jobIds) {
      if (this.done.has(id)) continue;
      this.record(await this.client.waitForJob(id, { timeoutMs: 24 * 3600_000, intervalMs: 250, signal }));
      tick();
    }
    return jobIds.map((id) => this.done.get(id)!);
  }

  private record(job: Job): void {
    if (job.state === "done") {
      this.done.set(job.id, job);
      this.partial.delete(job.id);
    } else {
      this.partial.set(
        job.id,
        job.counts.stored + job.counts.unchanged + job.counts.dead + job.counts.discarded,
      );
    }
  }
}

/** A cli-progress bar on a TTY; otherwise a plain line every few seconds (logs, CI). */
class ProgressDisplay {
  private readonly bar: cliProgress.SingleBar | undefined;
  private lastLine = 0;
  private tokensPerSecond = 0;
  private readonly started = Date.now();
  private stopped = false;

  constructor(
    private readonly totalBytes: number,
    private readonly startOffset: number,
    tty: boolean,
    private readonly log: (line: string) => void,
  ) {
    if (tty) {
      this.bar = new cliProgress.SingleBar(
        {
          format: "{bar} {percentage}% | sent {sent} | stored {stored} | {tps} tok/s | ETA {eta_formatted}",
          stream: process.stderr,
          hideCursor: true,
          etaBuffer: 20,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(Math.max(1, totalBytes), startOffset, { sent: 0, stored: 0, tps: 0 });
    }
  }

  update(offset: number, sent: number, stored: number, tokensPerSecond: number | undefined): void {
    if (this.stopped) return;
    if (tokensPerSecond !== undefined) this.tokensPerSecond = tokensPerSecond;
    const tps = Math.round(this.tokensPerSecond);
    if (this.bar) {
      this.bar.update(offset, { sent, stored, tps });
      return;
    }
    const now = Date.now();
    if (now - this.lastLine < 2000) return;
    this.lastLine = now;
    const done = offset - this.startOffset;
    const rate = done / Math.max(0.001, (now - this.started) / 1000);
    const eta = rate > 0 ? (this.totalBytes - offset) / rate : undefined;
    const pct = this.totalBytes > 0 ? Math.floor((100 * offset) / this.totalBytes) : 100;
    this.log(`ingest: ${pct}% | sent ${sent} | stored ${stored} | ${tps} tok/s | ETA ${formatDuration(eta)}`);
  }

  note(message: string): void {
    if (this.stopped) return;
    // On a TTY, clear the bar's line; it redraws on its next update.
    this.log(this.bar ? `\r\x1b[K${message}` : message);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.bar?.stop();
  }
}
