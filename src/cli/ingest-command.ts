import { statSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { type Job, RagEmbedError } from "../client/index.js";
import type { Chunk } from "../client/types.js";
import { parseDuration, SettingsError } from "../config/settings.js";
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
import { etaSeconds, ProgressDisplay, StoredRate } from "./ingest-progress.js";
import { renderSummary, summarize } from "./ingest-summary.js";
import { countRecords, formatFromPath, InputError, type InputFormat, readRecords } from "./input-reader.js";
import { JobTracker } from "./job-tracker.js";
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
  --checkpoint PATH     progress file (default: FILE.<hash>.rag-embed-progress.json in the working
                        directory; the hash tells apart inputs and collections)
  --restart             ignore an existing checkpoint and start from the beginning
  --no-wait             do not wait for the jobs to finish
  --timeout DURATION    while waiting, give up when nothing was stored for this long (default 10m;
                        e.g. 90s, 30m, 2h); a server restart or failover is waited out until then
  --json                print the summary as JSON on stdout
${CLIENT_FLAGS_USAGE}

The bar shows chunks stored out of chunks the server accepted, what was sent of the file, the
server's rate and the time left.

Exit status: 0 all stored; 1 some chunks are dead letters, or an error; 2 bad usage; 3 gave up
waiting (--timeout) with chunks still pending (the checkpoint is kept: run again to keep waiting);
130 interrupted.`;

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
      timeout: { type: "string" },
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
  try {
    statSync(input);
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
  const timeoutMs = durationFlag("timeout", values.timeout, "10m");
  const checkpointPath = resolve(values.checkpoint ?? checkpointPathFor(input, collection));
  // Sending: a restart or failover can take a minute, so a request that got no answer is retried
  // that long. Following the jobs: no retries inside a request, the tracker waits and says so.
  const client = clientFrom(values, { maxNetworkRetries: 12 });
  const follower = clientFrom(values, { maxNetworkRetries: 0 });
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

  const tracker = new JobTracker(follower);
  const progress = new ProgressDisplay(process.stderr.isTTY ? process.stderr : undefined, log);
  const storedRate = new StoredRate();
  let serverRates = { chunksPerSecond: 0, tokensPerSecond: 0 };
  let totalRecords: number | undefined;
  let waiting = false;
  const render = () => {
    const settled = tracker.settled();
    // What is left of the whole file: chunks not yet accepted count too, once the file is counted.
    const expected = Math.max(state.accepted, (totalRecords ?? 0) - state.skipped_empty);
    const left = expected - settled.stored - settled.dead - settled.discarded;
    progress.update({
      accepted: state.accepted,
      stored: settled.stored,
      dead: settled.dead,
      sent: state.records,
      total: totalRecords,
      ...serverRates,
      etaSeconds: etaSeconds(left, storedRate.perSecond() ?? serverRates.chunksPerSecond),
    });
  };
  const counting = new AbortController();
  void countRecords(input, format, counting.signal).then((records) => {
    totalRecords = records;
    render();
  });
  const poller = setInterval(() => {
    const jobs = waiting ? Promise.resolve() : tracker.poll(state.job_ids);
    void jobs
      .then(() => follower.status())
      .then((status) => {
        serverRates = {
          chunksPerSecond: status.throughput.chunks_per_second,
          tokensPerSecond: status.throughput.tokens_per_second,
        };
        storedRate.add(tracker.settled().stored);
        render();
      })
      .catch(() => undefined); // only the display's figures: waiting reports the server's absence
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
    render();
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
    let timedOut = false;
    if (!values["no-wait"]) {
      progress.note(
        `All ${state.accepted} chunks acknowledged; waiting for ${state.job_ids.length} job(s) to be stored...`,
      );
      waiting = true;
      try {
        ({ jobs, timedOut } = await tracker.waitAll(state.job_ids, {
          signal: controller.signal,
          stallTimeoutMs: timeoutMs,
          onTick: () => {
            storedRate.add(tracker.settled().stored);
            render();
          },
          onUnavailable: (reason) =>
            progress.note(
              `server unavailable (${reason}); waiting for it to come back (gives up after ${formatDuration(timeoutMs / 1000)} without progress)`,
            ),
          onBack: () => progress.note("server is back; waiting for the jobs to finish..."),
        }));
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
    render();
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
      timed_out: timedOut,
    });
    if (!values["no-wait"] && !timedOut) removeCheckpoint(checkpointPath);
    if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else process.stdout.write(renderSummary(summary, state.job_ids.length - startJobs, !values["no-wait"]));
    if (timedOut) {
      log(
        `rag-embed ingest: gave up waiting: nothing was stored for ${formatDuration(timeoutMs / 1000)} ` +
          `(--timeout) and ${summary.pending} chunk(s) are still pending. They are acknowledged: the server ` +
          `stores them when it can. Run the same command again to keep waiting (checkpoint: ${checkpointPath}).`,
      );
      return 3;
    }
    return summary.dead > 0 ? 1 : 0;
  } finally {
    counting.abort();
    clearInterval(poller);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

function durationFlag(name: string, value: string | undefined, fallback: string): number {
  try {
    return parseDuration(value ?? fallback);
  } catch (error) {
    if (error instanceof SettingsError) throw new UsageError(`--${name}: ${error.message}`);
    throw error;
  }
}
