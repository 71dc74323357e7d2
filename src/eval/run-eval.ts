import { resolve } from "node:path";
import { performance } from "node:perf_hooks";
import type { RagEmbedClient } from "../client/index.js";
import { loadTestQueries, type TestQueries } from "./eval-dataset.js";
import { type EvalResult, round, toEvalResult } from "./eval-result.js";
import { evalDataDir, startEvalServer, stopEvalServer } from "./eval-server.js";
import { ingestCorpus } from "./ingest-corpus.js";
import { checkStoredPoints, scoreCollection } from "./score-collection.js";

export { type EvalResult, formatTable, type PerQueryResult, percentile } from "./eval-result.js";

export const EVAL_COLLECTION = "eval";

export interface EvalOptions {
  /** BEIR-layout directory. */
  dataset: string;
  /** Model id or local directory; default: the server's default model. */
  model?: string;
  /** Port for the server (default 0: any free port). */
  port?: number;
  /** Only the first N corpus documents. */
  limitDocs?: number;
  /** Only the first N test queries (in qrels order). */
  limitQueries?: number;
  /** Chunks per ingest request. */
  batchSize?: number;
  /** Searches in flight at once. */
  concurrency?: number;
  /** Hits per query (recall is computed at this depth). */
  topK?: number;
  split?: string;
  /** The server's DATA_DIR, kept afterwards (new or empty); default: a temporary one, deleted. */
  dataDir?: string;
  /** Extra environment for the server (tests pin threads, etc.). */
  serverEnv?: Record<string, string | undefined>;
  /** Progress lines (stderr by default). */
  log?: (line: string) => void;
}

/** EvalOptions with every default filled in. */
export type EvalSettings = Required<
  Pick<EvalOptions, "split" | "batchSize" | "concurrency" | "topK" | "log">
> &
  EvalOptions & { datasetDir: string };

export function evalSettings(options: EvalOptions): EvalSettings {
  return {
    ...options,
    datasetDir: resolve(options.dataset),
    split: options.split ?? "test",
    batchSize: options.batchSize ?? 256,
    concurrency: options.concurrency ?? 4,
    topK: options.topK ?? 100,
    log: options.log ?? ((line: string) => process.stderr.write(`${line}\n`)),
  };
}

/**
 * Ingests the corpus into the `eval` collection of a running server (its version 1), checks every
 * document was stored exactly once, and scores the test queries against it.
 */
export async function ingestAndScore(
  client: RagEmbedClient,
  test: TestQueries,
  settings: EvalSettings,
): Promise<{ result: EvalResult; docIds: Set<string> }> {
  const started = performance.now();
  const { log } = settings;
  const modelInfo = await client.modelInfo();
  log(`model ${modelInfo.model_source} (profile ${modelInfo.profile}, max ${modelInfo.max_tokens} tokens)`);
  const ingest = await ingestCorpus(client, {
    datasetDir: settings.datasetDir,
    collection: EVAL_COLLECTION,
    limitDocs: settings.limitDocs,
    batchSize: settings.batchSize,
    log,
  });
  const storedPoints = await checkStoredPoints(client, EVAL_COLLECTION, test.queries[0], ingest.docIds);
  log(
    `ingested ${ingest.docIds.size} documents in ${ingest.seconds.toFixed(1)} s; ${test.queries.length} queries…`,
  );
  const score = await scoreCollection(client, EVAL_COLLECTION, test, settings);
  const result = toEvalResult({
    datasetDir: settings.datasetDir,
    split: settings.split,
    collection: EVAL_COLLECTION,
    builtBy: "ingest",
    modelInfo,
    docs: ingest.docIds.size,
    storedPoints,
    truncated: ingest.truncated,
    skippedEmpty: ingest.skippedEmpty,
    buildSeconds: ingest.seconds,
    topK: settings.topK,
    score,
    started,
    now: performance.now(),
  });
  return { result, docIds: ingest.docIds };
}

/**
 * Runs a BEIR retrieval benchmark through the server: a fresh server on a temp data dir, the corpus
 * ingested over HTTP, every test query searched over HTTP, nDCG@10 and Recall@top_k computed as
 * MTEB/pytrec_eval do (see retrieval-metrics.ts).
 */
export async function runEval(options: EvalOptions): Promise<EvalResult> {
  const started = performance.now();
  const settings = evalSettings(options);
  // Queries first: a bad dataset fails before a model is loaded.
  const test = await loadTestQueries(settings.datasetDir, settings.split, settings.limitQueries);
  const dataDir = evalDataDir(settings.dataDir);
  try {
    const server = await startEvalServer({ ...settings, dataDir: dataDir.dir });
    try {
      settings.log(`server ${server.url} (data dir ${dataDir.dir}) is ready`);
      const { result } = await ingestAndScore(server.client, test, settings);
      // The whole run, server start included.
      return { ...result, eval_seconds: round((performance.now() - started) / 1000, 2) };
    } finally {
      await stopEvalServer(server, settings.log);
    }
  } finally {
    dataDir.cleanup();
  }
}
