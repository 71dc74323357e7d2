import { createHash } from "node:crypto";
import { readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";

/**
 * Where an interrupted `rag-embed ingest` resumes: everything up to `offset` / `records` was
 * acknowledged (202) by the server under `job_ids`. Written after every acknowledged request
 * (write + rename, so a crash leaves the old or the new one, never half).
 */
export interface IngestCheckpoint {
  version: 1;
  input: string;
  input_size: number;
  input_mtime_ms: number;
  format: "jsonl" | "csv";
  collection: string;
  /** Byte offset just past the last acknowledged record. */
  offset: number;
  /** Data records consumed up to there (sent, or skipped as empty). */
  records: number;
  /** Lines up to there. */
  line: number;
  /** Chunks acknowledged by the server. */
  accepted: number;
  skipped_empty: number;
  job_ids: string[];
  updated_at: string;
}

/**
 * The default checkpoint: in the working directory (the input may sit in a shared or read-only
 * folder), named after the input and told apart by a hash of its full path and the collection, so
 * two ingests from one directory never share a checkpoint.
 */
export function checkpointPathFor(input: string, collection: string, cwd = process.cwd()): string {
  const hash = createHash("sha256")
    .update(`${resolve(input)}\0${collection}`)
    .digest("hex")
    .slice(0, 8);
  return join(cwd, `${basename(input)}.${hash}.rag-embed-progress.json`);
}

export function loadCheckpoint(path: string): IngestCheckpoint | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  const value = JSON.parse(text) as IngestCheckpoint;
  if (value.version !== 1 || typeof value.offset !== "number" || !Array.isArray(value.job_ids)) {
    throw new Error(`${path} is not a rag-embed checkpoint`);
  }
  return value;
}

export function saveCheckpoint(path: string, checkpoint: IngestCheckpoint): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(checkpoint)}\n`);
  renameSync(tmp, path);
}

export function removeCheckpoint(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
}

/** Why a checkpoint does not apply to this run, or undefined when it does. */
export function checkpointMismatch(
  checkpoint: IngestCheckpoint,
  input: string,
  format: string,
  collection: string,
): string | undefined {
  const stat = statSync(input);
  if (checkpoint.format !== format) return `it was made for format ${checkpoint.format}`;
  if (checkpoint.collection !== collection) return `it was made for collection '${checkpoint.collection}'`;
  if (stat.size < checkpoint.offset) return "the input is now shorter than the checkpointed offset";
  if (
    stat.size !== checkpoint.input_size ||
    Math.round(stat.mtimeMs) !== Math.round(checkpoint.input_mtime_ms)
  ) {
    return "the input file changed since";
  }
  return undefined;
}
