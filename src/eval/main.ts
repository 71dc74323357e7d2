#!/usr/bin/env node
import { existsSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { formatTable, runEval } from "./run-eval.js";

const USAGE = `Usage: npm run eval -- --dataset DIR [options]

Runs a BEIR retrieval benchmark through a fresh server: ingests the corpus over HTTP, searches every
test query over HTTP, reports nDCG@10 and Recall@100 as MTEB/pytrec_eval compute them.

  --dataset DIR          BEIR layout: corpus.jsonl, queries.jsonl, qrels/test.tsv (required)
  --model DIR_OR_ID      model directory or Hugging Face id (default: the server's default)
  --json FILE            write the results as JSON
  --limit-docs N         only the first N corpus documents
  --limit-queries N      only the first N test queries
  --port P               server port (default: any free port)
  --split NAME           qrels split (default: test)
  --concurrency N        searches in flight (default: 4)
  --batch-size N         chunks per ingest request (default: 256)
`;

function positiveInt(name: string, value: string | undefined, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min) throw new Error(`--${name} must be an integer >= ${min}`);
  return parsed;
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      dataset: { type: "string" },
      model: { type: "string" },
      json: { type: "string" },
      "limit-docs": { type: "string" },
      "limit-queries": { type: "string" },
      port: { type: "string" },
      split: { type: "string" },
      concurrency: { type: "string" },
      "batch-size": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (!values.dataset) throw new Error(`--dataset is required\n\n${USAGE}`);
  // `npm run` changes to the package root; relative paths mean the caller's directory.
  const base = process.env.INIT_CWD ?? process.cwd();
  const model =
    values.model !== undefined && existsSync(resolve(base, values.model))
      ? resolve(base, values.model)
      : values.model;
  const result = await runEval({
    dataset: resolve(base, values.dataset),
    model,
    port: positiveInt("port", values.port, 0),
    limitDocs: positiveInt("limit-docs", values["limit-docs"]),
    limitQueries: positiveInt("limit-queries", values["limit-queries"]),
    split: values.split,
    concurrency: positiveInt("concurrency", values.concurrency),
    batchSize: positiveInt("batch-size", values["batch-size"]),
  });
  process.stdout.write(`${formatTable(result)}\n`);
  if (values.json) {
    const file = resolve(base, values.json);
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(`results written to ${file}\n`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`eval: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
