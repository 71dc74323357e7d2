import { statSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { type Job, RagEmbedError } from "../client/index.js";
import { parseDuration, SettingsError } from "../config/settings.js";
import {
  CLIENT_FLAGS,
  CLIENT_FLAGS_USAGE,
  clientFrom,
  formatDuration,
  UsageError,
} from "./client-options.js";
import { etaSeconds, ProgressDisplay, StoredRate } from "./ingest-progress.js";
import { InputError } from "./input-reader.js";
import { JobTracker } from "./job-tracker.js";
import { readSourceDocuments } from "./source-documents.js";

export const SYNC_USAGE = `Usage: rag-embed sync FILE-OR-DIR --collection NAME [options]

Makes a collection hold what a source holds, document by document: every document of the source
replaces its stored version (unchanged chunks are not embedded again; chunks no longer in it are
deleted once its new chunks are stored). With --delete-missing, documents of the collection that
the source no longer has are deleted too (LangChain's "full" cleanup).

The source is a JSONL or CSV file, or a directory of them (recursively). A record's document is its
--document-field; in a directory, a record without one belongs to its file (its relative path).

  --collection NAME     target collection (required)
  --delete-missing      delete the collection's documents that are not in the source
  --dry-run             print what would be replaced and deleted, change nothing
  --id-field NAME       field holding the chunk id (default id)
  --text-field NAME     field holding the text (default text)
  --document-field NAME field holding the document id (default document_id)
  --no-metadata         do not send the other fields as metadata
  --timeout DURATION    while waiting, give up when nothing was stored for this long (default 10m)
  --json                print the plan (--dry-run) or the summary as JSON on stdout
${CLIENT_FLAGS_USAGE}

Exit status: 0 in sync; 1 some chunks are dead letters, or an error; 2 bad usage; 3 gave up waiting.`;

interface Plan {
  source: string;
  collection: string;
  files: number;
  documents: number;
  chunks: number;
  /** Source documents the collection does not have yet. */
  new_documents: string[];
  /** The collection's documents the source no longer has: deleted with --delete-missing. */
  missing_documents: string[];
  delete_missing: boolean;
}

export async function syncCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...CLIENT_FLAGS,
      collection: { type: "string", short: "c" },
      "delete-missing": { type: "boolean" },
      "dry-run": { type: "boolean" },
      "id-field": { type: "string" },
      "text-field": { type: "string" },
      "document-field": { type: "string" },
      "no-metadata": { type: "boolean" },
      timeout: { type: "string" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${SYNC_USAGE}\n`);
    return 0;
  }
  const [sourceArg, ...extra] = positionals;
  if (sourceArg === undefined || extra.length > 0)
    throw new UsageError(`Give exactly one FILE-OR-DIR.\n\n${SYNC_USAGE}`);
  const collection = values.collection;
  if (!collection) throw new UsageError("--collection is required");
  const source = resolve(sourceArg);
  try {
    statSync(source);
  } catch {
    throw new UsageError(`Cannot read ${sourceArg}`);
  }
  let timeoutMs: number;
  try {
    timeoutMs = parseDuration(values.timeout ?? "10m");
  } catch (error) {
    if (error instanceof SettingsError) throw new UsageError(`--timeout: ${error.message}`);
    throw error;
  }
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const client = clientFrom(values, { maxNetworkRetries: 12 });
  const follower = clientFrom(values, { maxNetworkRetries: 0 });

  let read: Awaited<ReturnType<typeof readSourceDocuments>>;
  const stored = new Set<string>();
  try {
    read = await readSourceDocuments(source, {
      idField: values["id-field"] ?? "id",
      textField: values["text-field"] ?? "text",
      documentField: values["document-field"] ?? "document_id",
      metadata: !values["no-metadata"],
    });
    for await (const documentId of client.documents(collection)) stored.add(documentId);
  } catch (error) {
    if (error instanceof InputError || error instanceof RagEmbedError) {
      log(`rag-embed sync: ${error.message}`);
      return 1;
    }
    throw error;
  }
  const { documents } = read;
  const plan: Plan = {
    source,
    collection,
    files: read.files,
    documents: documents.size,
    chunks: [...documents.values()].reduce((sum, chunks) => sum + chunks.length, 0),
    new_documents: [...documents.keys()].filter((id) => !stored.has(id)),
    missing_documents: [...stored].filter((id) => !documents.has(id)),
    delete_missing: Boolean(values["delete-missing"]),
  };
  if (values["dry-run"]) {
    if (values.json) process.stdout.write(`${JSON.stringify(plan)}\n`);
    else process.stdout.write(renderPlan(plan, true));
    return 0;
  }
  if (!values.json) process.stdout.write(renderPlan(plan, false));

  const tracker = new JobTracker(follower);
  const progress = new ProgressDisplay(process.stderr.isTTY ? process.stderr : undefined, log);
  const rate = new StoredRate();
  const jobIds: string[] = [];
  let accepted = 0;
  const render = () => {
    const settled = tracker.settled();
    progress.update({
      accepted,
      stored: settled.stored,
      dead: settled.dead,
      sent: accepted,
      total: plan.chunks,
      chunksPerSecond: rate.perSecond() ?? 0,
      tokensPerSecond: 0,
      etaSeconds: etaSeconds(plan.chunks - settled.stored - settled.dead, rate.perSecond()),
    });
  };
  let deletedPoints = 0;
  try {
    for (const [documentId, chunks] of documents) {
      const result = await client.replaceDocument(collection, documentId, chunks);
      jobIds.push(result.job_id);
      accepted += result.count;
      render();
    }
    if (plan.delete_missing) {
      for (const documentId of plan.missing_documents) {
        deletedPoints += (await client.deleteDocument(collection, documentId)).deleted;
      }
    }
    progress.note(
      `All ${accepted} chunks of ${documents.size} document(s) acknowledged; waiting for them to be stored...`,
    );
    const { jobs, timedOut } = await tracker.waitAll(jobIds, {
      signal: new AbortController().signal,
      stallTimeoutMs: timeoutMs,
      onTick: () => {
        rate.add(tracker.settled().stored);
        render();
      },
      onUnavailable: (reason) => progress.note(`server unavailable (${reason}); waiting for it to come back`),
      onBack: () => progress.note("server is back; waiting for the jobs to finish..."),
    });
    render();
    progress.stop();
    const summary = summarize(plan, jobs, deletedPoints, timedOut);
    if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else process.stdout.write(renderSummary(summary));
    if (timedOut) {
      log(
        `rag-embed sync: gave up waiting after ${formatDuration(timeoutMs / 1000)} without progress; run it again.`,
      );
      return 3;
    }
    return summary.dead > 0 ? 1 : 0;
  } catch (error) {
    progress.stop();
    if (error instanceof RagEmbedError) {
      log(`rag-embed sync: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

interface SyncSummary {
  collection: string;
  documents_replaced: number;
  documents_new: number;
  documents_deleted: number;
  points_deleted: number;
  chunks: number;
  stored: number;
  unchanged: number;
  dead: number;
  timed_out: boolean;
}

function summarize(plan: Plan, jobs: Job[], pointsDeleted: number, timedOut: boolean): SyncSummary {
  const sum = (pick: (job: Job) => number) => jobs.reduce((total, job) => total + pick(job), 0);
  return {
    collection: plan.collection,
    documents_replaced: plan.documents,
    documents_new: plan.new_documents.length,
    documents_deleted: plan.delete_missing ? plan.missing_documents.length : 0,
    // Points deleted by the deletes, plus the old chunks the replacements removed.
    points_deleted: pointsDeleted + sum((job) => job.replace?.deleted_points ?? 0),
    chunks: plan.chunks,
    stored: sum((job) => job.counts.stored),
    unchanged: sum((job) => job.counts.unchanged),
    dead: sum((job) => job.counts.dead),
    timed_out: timedOut,
  };
}

function renderPlan(plan: Plan, dryRun: boolean): string {
  const sample = (ids: string[]) =>
    ids.length === 0 ? "" : `: ${ids.slice(0, 10).join(", ")}${ids.length > 10 ? ", ..." : ""}`;
  const lines = [
    `${dryRun ? "Plan (dry run, nothing changed)" : "Plan"}: ${plan.source} → collection '${plan.collection}'`,
    `  replace ${plan.documents} document(s) from ${plan.files} file(s), ${plan.chunks} chunk(s); ${plan.new_documents.length} new${sample(plan.new_documents)}`,
    plan.delete_missing
      ? `  delete  ${plan.missing_documents.length} document(s) the source no longer has${sample(plan.missing_documents)}`
      : `  keep    ${plan.missing_documents.length} document(s) the source no longer has (pass --delete-missing to delete them)${sample(plan.missing_documents)}`,
  ];
  return `${lines.join("\n")}\n`;
}

function renderSummary(s: SyncSummary): string {
  return (
    `Synced:      ${s.documents_replaced} document(s) (${s.documents_new} new), ${s.documents_deleted} deleted, ${s.points_deleted} old point(s) removed\n` +
    `Result:      ${s.stored} stored, ${s.unchanged} unchanged, ${s.dead} dead of ${s.chunks} chunk(s)\n`
  );
}
