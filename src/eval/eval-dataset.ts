import { existsSync } from "node:fs";
import { join } from "node:path";
import { readQrels, readQueries } from "./beir.js";
import type { Qrels } from "./retrieval-metrics.js";

export interface EvalQuery {
  id: string;
  text: string;
}

/** The judged queries of a split, in qrels order, with their text. */
export interface TestQueries {
  qrels: Qrels;
  queries: EvalQuery[];
}

/**
 * Reads the queries and qrels of a BEIR directory (checking the corpus is there too), so that a bad
 * dataset fails before a server is started or a model loaded.
 */
export async function loadTestQueries(
  datasetDir: string,
  split: string,
  limitQueries?: number,
): Promise<TestQueries> {
  for (const file of ["corpus.jsonl", "queries.jsonl", join("qrels", `${split}.tsv`)]) {
    if (!existsSync(join(datasetDir, file))) throw new Error(`${join(datasetDir, file)} not found`);
  }
  let qrels: Qrels = await readQrels(datasetDir, split);
  if (limitQueries !== undefined) qrels = new Map([...qrels].slice(0, limitQueries));
  const allQueries = await readQueries(datasetDir);
  const queries = [...qrels.keys()].map((id) => {
    const text = allQueries.get(id);
    if (text === undefined) throw new Error(`Query ${id} is in the qrels but not in queries.jsonl`);
    return { id, text };
  });
  return { qrels, queries };
}
