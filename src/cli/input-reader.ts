import { createReadStream } from "node:fs";
import { extname } from "node:path";
import { parse } from "csv-parse";

export type InputFormat = "jsonl" | "csv";

/** One record of the input and where it ends, so a checkpoint can say where to resume. */
export interface InputRecord {
  value: Record<string, unknown>;
  /** 1-based number of the record among the file's data records. */
  index: number;
  /** 1-based line where the record starts (JSONL) or ends (CSV), for messages. */
  line: number;
  /** Byte offset just past the record. */
  endOffset: number;
}

export function formatFromPath(path: string): InputFormat | undefined {
  const ext = extname(path).toLowerCase();
  if (ext === ".jsonl" || ext === ".ndjson" || ext === ".json") return "jsonl";
  if (ext === ".csv") return "csv";
  return undefined;
}

export class InputError extends Error {
  override name = "InputError";
}

/**
 * Streams the records of a JSONL or CSV file. JSONL resumes by seeking to `start.offset`; CSV (whose
 * header must be read again) re-parses and skips the first `start.records` records.
 */
export async function* readRecords(
  path: string,
  format: InputFormat,
  start: { offset: number; records: number; line: number } = { offset: 0, records: 0, line: 0 },
): AsyncGenerator<InputRecord> {
  if (format === "jsonl") yield* readJsonl(path, start);
  else yield* readCsv(path, start.records);
}

/**
 * Records in the file, for the progress display; undefined if it does not parse (sending will say
 * where) or `signal` ends the count first (a run that stops early must not go on reading).
 */
export async function countRecords(
  path: string,
  format: InputFormat,
  signal: AbortSignal,
): Promise<number | undefined> {
  let records = 0;
  try {
    for await (const _ of readRecords(path, format)) {
      if (signal.aborted) return undefined;
      records += 1;
    }
  } catch {
    return undefined;
  }
  return records;
}

async function* readJsonl(
  path: string,
  start: { offset: number; records: number; line: number },
): AsyncGenerator<InputRecord> {
  let offset = start.offset;
  let line = start.line;
  let index = start.records;
  let carry: Buffer = Buffer.alloc(0);
  const emit = (bytes: Buffer, end: number): InputRecord | undefined => {
    line += 1;
    const text = bytes.toString("utf8").replace(/\r$/, "");
    if (text.trim() === "") return undefined;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new InputError(`${path}:${line}: not valid JSON (${(error as Error).message})`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new InputError(`${path}:${line}: each line must be a JSON object`);
    }
    index += 1;
    return { value: value as Record<string, unknown>, index, line, endOffset: end };
  };
  for await (const piece of createReadStream(path, { start: start.offset })) {
    let chunk = piece as Buffer;
    if (carry.length > 0) chunk = Buffer.concat([carry, chunk]);
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, from);
      if (nl < 0) break;
      const record = emit(chunk.subarray(from, nl), offset + nl + 1);
      if (record) yield record;
      from = nl + 1;
    }
    offset += from;
    carry = Buffer.from(chunk.subarray(from));
  }
  if (carry.length > 0) {
    const record = emit(carry, offset + carry.length);
    if (record) yield record;
  }
}

async function* readCsv(path: string, skipRecords: number): AsyncGenerator<InputRecord> {
  const parser = createReadStream(path).pipe(
    parse({ columns: true, info: true, bom: true, skip_empty_lines: true, relax_column_count: false }),
  );
  try {
    for await (const item of parser) {
      const { record, info } = item as {
        record: Record<string, unknown>;
        info: { bytes: number; lines: number; records: number };
      };
      if (info.records <= skipRecords) continue;
      yield { value: record, index: info.records, line: info.lines, endOffset: info.bytes };
    }
  } catch (error) {
    if (error instanceof InputError) throw error;
    throw new InputError(`${path}: ${(error as Error).message}`);
  }
}
