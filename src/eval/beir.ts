import { createReadStream } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Qrels } from "./retrieval-metrics.js";

/**
 * Readers for the BEIR dataset layout: `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl`
 * (`_id`, `text`) and `qrels/<split>.tsv` (header `query-id corpus-id score`).
 */

export interface BeirDocument {
  id: string;
  title: string;
  text: string;
}

/** The text MTEB embeds for a BEIR document: `(title + " " + text).strip()`. */
export function documentText(doc: BeirDocument): string {
  return `${doc.title} ${doc.text}`.trim();
}

async function* lines(file: string): AsyncGenerator<{ line: string; number: number }> {
  const reader = createInterface({
    input: createReadStream(file, { encoding: "utf8" }),
    crlfDelay: Infinity,
  });
  let number = 0;
  for await (const line of reader) {
    number += 1;
    if (line.trim() === "") continue;
    yield { line, number };
  }
}

function parseJsonLine(file: string, line: string, number: number): Record<string, unknown> {
  try {
    const value = JSON.parse(line) as unknown;
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not an object");
    return value as Record<string, unknown>;
  } catch (error) {
    throw new Error(`${file}:${number}: not a JSON object (${(error as Error).message})`);
  }
}

function idOf(file: string, record: Record<string, unknown>, number: number): string {
  const id = record._id;
  if (typeof id !== "string" && typeof id !== "number") throw new Error(`${file}:${number}: no _id`);
  return String(id);
}

/** Streams the corpus one document at a time (the corpus may not fit in memory). */
export async function* readCorpus(dir: string): AsyncGenerator<BeirDocument> {
  const file = join(dir, "corpus.jsonl");
  for await (const { line, number } of lines(file)) {
    const record = parseJsonLine(file, line, number);
    yield {
      id: idOf(file, record, number),
      title: typeof record.title === "string" ? record.title : "",
      text: typeof record.text === "string" ? record.text : "",
    };
  }
}

/** queryId → query text. */
export async function readQueries(dir: string): Promise<Map<string, string>> {
  const file = join(dir, "queries.jsonl");
  const queries = new Map<string, string>();
  for await (const { line, number } of lines(file)) {
    const record = parseJsonLine(file, line, number);
    queries.set(idOf(file, record, number), typeof record.text === "string" ? record.text : "");
  }
  return queries;
}

/** The qrels of a split, in file order (queries in order of first appearance). */
export async function readQrels(dir: string, split = "test"): Promise<Qrels> {
  const file = join(dir, "qrels", `${split}.tsv`);
  const qrels: Qrels = new Map();
  let first = true;
  for await (const { line, number } of lines(file)) {
    const fields = line.split("\t");
    if (first) {
      first = false;
      if (fields[0] === "query-id") continue;
    }
    const [queryId, docId, score] = fields;
    const grade = Number(score);
    if (queryId === undefined || docId === undefined || score === undefined || !Number.isFinite(grade)) {
      throw new Error(`${file}:${number}: expected 'query-id<TAB>corpus-id<TAB>score'`);
    }
    let judgements = qrels.get(queryId);
    if (!judgements) {
      judgements = new Map();
      qrels.set(queryId, judgements);
    }
    judgements.set(docId, Math.trunc(grade));
  }
  return qrels;
}
