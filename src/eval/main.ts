#!/usr/bin/env node
import { existsSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { formatVersionCompare, runVersionCompare } from "./compare-versions.js";
import { formatCompare, runCompare } from "./run-compare.js";
import { formatTable, runEval } from "./run-eval.js";

const USAGE = `Usage: npm run eval -- --dataset DIR [options]
       npm run eval -- --dataset DIR --model A --compare-model B [--cutover-if-better [--min-delta X]]
       npm run eval -- --dataset DIR --url URL --collection C [--versions N,M] [--cutover-if-better ...]

Runs a BEIR retrieval benchmark through a fresh server: ingests the corpus over HTTP, searches every
test query over HTTP, reports nDCG@10 and Recall@100 as MTEB/pytrec_eval compute them.

With --compare-model, compares two versions of the collection: version 1 ingested with model A is
scored, the server is restarted on the same data dir with model B, POST reembed builds version 2 from
the stored text, the same queries are scored against it, and both scores and every query's
difference are reported.

With --url, compares two existing versions of a collection on a running server (the corpus already
in it, chunk ids = corpus ids; both versions' models served, EMBEDDING_MODELS): its active version
(A) and its next one (B), or the versions given; only the queries are searched.

  --dataset DIR          BEIR layout: corpus.jsonl, queries.jsonl, qrels/test.tsv (required)
  --model DIR_OR_ID      model directory or Hugging Face id (default: the server's default)
  --compare-model M      model B: re-embed the collection with it and compare the two versions
  --cutover-if-better    then POST cutover when nDCG@10(B) - nDCG@10(A) >= --min-delta
  --min-delta X          the bar for --cutover-if-better (default 0)
  --top N                largest per-query gains and losses printed (default 10)
  --url URL              compare versions on this running server instead (no server is started)
  --collection C         with --url: the collection whose versions are compared
  --versions N,M         with --url: these version numbers (default: the active one and the next)
  --api-key KEY          with --url: sent as Authorization: Bearer (env RAG_EMBED_API_KEY)
  --json FILE            write the results as JSON
  --data-dir DIR         the server's DATA_DIR, new or empty, kept afterwards (default: a temporary
                         one, deleted)
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

function finiteNumber(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (value.trim() === "" || !Number.isFinite(parsed)) throw new Error(`--${name} must be a number`);
  return parsed;
}

/** `--versions 1,2`: two version numbers. */
function versionPair(value: string | undefined): [number, number] | undefined {
  if (value === undefined) return undefined;
  const parts = value.split(",").map((part) => Number(part.trim()));
  const [a, b] = parts;
  if (
    parts.length !== 2 ||
    a === undefined ||
    b === undefined ||
    ![a, b].every((n) => Number.isInteger(n) && n >= 1)
  ) {
    throw new Error("--versions takes two version numbers, e.g. 1,2");
  }
  return [a, b];
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      dataset: { type: "string" },
      model: { type: "string" },
      "compare-model": { type: "string" },
      "cutover-if-better": { type: "boolean" },
      "min-delta": { type: "string" },
      top: { type: "string" },
      url: { type: "string" },
      collection: { type: "string" },
      versions: { type: "string" },
      "api-key": { type: "string" },
      json: { type: "string" },
      "data-dir": { type: "string" },
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
  const compareModel = values["compare-model"];
  if (values.url !== undefined) {
    // The versions exist already: nothing is ingested, no server started.
    for (const flag of ["compare-model", "model", "data-dir", "limit-docs", "port", "batch-size"] as const) {
      if (values[flag] !== undefined) throw new Error(`--${flag} starts a server: not with --url`);
    }
    if (!values.collection) throw new Error("--url needs --collection");
  } else {
    for (const flag of ["collection", "versions", "api-key"] as const) {
      if (values[flag] !== undefined) throw new Error(`--${flag} needs --url`);
    }
    if (compareModel === undefined) {
      for (const flag of ["cutover-if-better", "min-delta", "top"] as const) {
        if (values[flag] !== undefined) throw new Error(`--${flag} needs --compare-model or --url`);
      }
    }
  }
  if (values["min-delta"] !== undefined && !values["cutover-if-better"]) {
    throw new Error("--min-delta needs --cutover-if-better");
  }
  // `npm run` changes to the package root; relative paths mean the caller's directory.
  const base = process.env.INIT_CWD ?? process.cwd();
  const modelPath = (model: string | undefined) =>
    model !== undefined && existsSync(resolve(base, model)) ? resolve(base, model) : model;
  const model = modelPath(values.model);
  const options = {
    dataset: resolve(base, values.dataset),
    model,
    dataDir: values["data-dir"] === undefined ? undefined : resolve(base, values["data-dir"]),
    port: positiveInt("port", values.port, 0),
    limitDocs: positiveInt("limit-docs", values["limit-docs"]),
    limitQueries: positiveInt("limit-queries", values["limit-queries"]),
    split: values.split,
    concurrency: positiveInt("concurrency", values.concurrency),
    batchSize: positiveInt("batch-size", values["batch-size"]),
  };
  let result: object;
  if (values.url !== undefined) {
    const comparison = await runVersionCompare({
      url: values.url,
      apiKey: values["api-key"] || process.env.RAG_EMBED_API_KEY,
      collection: values.collection as string,
      versions: versionPair(values.versions),
      dataset: options.dataset,
      split: options.split,
      limitQueries: options.limitQueries,
      concurrency: options.concurrency,
      cutoverIfBetter: values["cutover-if-better"] === true,
      minDelta: finiteNumber("min-delta", values["min-delta"]),
      top: positiveInt("top", values.top),
    });
    process.stdout.write(`${formatVersionCompare(comparison)}\n`);
    result = comparison;
  } else if (compareModel === undefined) {
    const evaluation = await runEval(options);
    process.stdout.write(`${formatTable(evaluation)}\n`);
    result = evaluation;
  } else {
    const modelB = modelPath(compareModel) as string;
    if (modelB === model) throw new Error("--compare-model names the same model as --model");
    const comparison = await runCompare({
      ...options,
      compareModel: modelB,
      cutoverIfBetter: values["cutover-if-better"] === true,
      minDelta: finiteNumber("min-delta", values["min-delta"]),
      top: positiveInt("top", values.top),
    });
    process.stdout.write(`${formatCompare(comparison)}\n`);
    result = comparison;
  }
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
