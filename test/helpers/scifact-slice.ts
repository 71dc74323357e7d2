import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { REPO_ROOT } from "./paths.js";

export const SCIFACT = resolve(REPO_ROOT, "../shared/datasets/scifact");

/**
 * A small BEIR dir cut from SciFact: the first `firstDocs` documents plus every document relevant to
 * the first `queries` test queries, and those queries (in qrels order). Scores on it are not
 * SciFact's, but every query has its relevant documents in the corpus.
 */
export function writeScifactSlice(
  dir: string,
  size: { firstDocs: number; queries: number },
): { docs: number; queries: string[] } {
  const qrelLines = readFileSync(join(SCIFACT, "qrels/test.tsv"), "utf8").split("\n").filter(Boolean);
  const [header, ...rows] = qrelLines;
  const queries: string[] = [];
  const keptRows: string[] = [];
  const relevant = new Set<string>();
  for (const row of rows) {
    const [queryId, docId] = row.split("\t");
    if (queryId === undefined || docId === undefined) continue;
    if (!queries.includes(queryId)) {
      if (queries.length === size.queries) continue;
      queries.push(queryId);
    }
    keptRows.push(row);
    relevant.add(docId);
  }
  const corpus = readFileSync(join(SCIFACT, "corpus.jsonl"), "utf8").split("\n").filter(Boolean);
  const slice = corpus.filter(
    (line, index) => index < size.firstDocs || relevant.has((JSON.parse(line) as { _id: string })._id),
  );
  const wanted = new Set(queries);
  const queryLines = readFileSync(join(SCIFACT, "queries.jsonl"), "utf8")
    .split("\n")
    .filter((line) => line && wanted.has((JSON.parse(line) as { _id: string })._id));
  mkdirSync(join(dir, "qrels"), { recursive: true });
  writeFileSync(join(dir, "corpus.jsonl"), `${slice.join("\n")}\n`);
  writeFileSync(join(dir, "queries.jsonl"), `${queryLines.join("\n")}\n`);
  writeFileSync(join(dir, "qrels/test.tsv"), `${[header, ...keptRows].join("\n")}\n`);
  return { docs: slice.length, queries };
}
