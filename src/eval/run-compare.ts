import { performance } from "node:perf_hooks";
import type { RagEmbedClient } from "../client/index.js";
import { type Comparison, compareEvaluations, formatComparison } from "./compare.js";
import { type CutoverDecision, decideCutover, formatDecision } from "./cutover-decision.js";
import { loadTestQueries, type TestQueries } from "./eval-dataset.js";
import { waitForJobs } from "./eval-jobs.js";
import { type EvalResult, formatTable, round, toEvalResult } from "./eval-result.js";
import { evalDataDir, startEvalServer, stopEvalServer } from "./eval-server.js";
import {
  EVAL_COLLECTION,
  type EvalOptions,
  type EvalSettings,
  evalSettings,
  ingestAndScore,
} from "./run-eval.js";
import { checkStoredPoints, scoreCollection } from "./score-collection.js";

export interface CompareOptions extends EvalOptions {
  /** Model B: the server restarts with it and re-embeds the collection into its next version. */
  compareModel: string;
  /** Cut the collection over to B's version when nDCG@10(B) − nDCG@10(A) ≥ minDelta. */
  cutoverIfBetter?: boolean;
  /** Default 0: B must score at least as well as A. */
  minDelta?: number;
  /** Largest per-query gains and losses listed (default 10). */
  top?: number;
}

export interface ReembedRun {
  job_id: string;
  count: number;
  skipped: number;
  from_version: string;
  to_version: string;
  /** From the POST to the job's last chunk stored. */
  seconds: number;
}

export interface CompareResult {
  dataset: string;
  dataset_dir: string;
  split: string;
  collection: string;
  /** Version 1, ingested with model A. */
  a: EvalResult;
  /** The next version, re-embedded from the stored text with model B. */
  b: EvalResult;
  reembed: ReembedRun;
  /** Means for both, B − A, improved/unchanged/regressed and every query's difference. */
  comparison: Comparison;
  cutover: CutoverDecision;
  /** Where the collections are left (`--data-dir`); null when the temporary dir was deleted. */
  data_dir: string | null;
  eval_seconds: number;
}

/**
 * Compares two models as two versions of one collection, the way a model change happens in
 * production: a server with model A ingests the corpus into `eval` (version 1) and is scored; the
 * server is restarted on the same DATA_DIR with model B, `POST .../reembed` builds `eval__v2` from the
 * stored text, and the same queries are scored against it; with `cutoverIfBetter`, `POST .../cutover`
 * only if B gained at least `minDelta` nDCG@10.
 */
export async function runCompare(options: CompareOptions): Promise<CompareResult> {
  const started = performance.now();
  const settings = evalSettings(options);
  const { log } = settings;
  const minDelta = options.minDelta ?? 0;
  if (!Number.isFinite(minDelta)) throw new Error("minDelta must be a finite number");
  const test = await loadTestQueries(settings.datasetDir, settings.split, settings.limitQueries);
  const dataDir = evalDataDir(settings.dataDir);
  try {
    const serverA = await startEvalServer({ ...settings, dataDir: dataDir.dir });
    let a: EvalResult;
    let docIds: Set<string>;
    try {
      log(`A: server ${serverA.url} (data dir ${dataDir.dir}) is ready`);
      ({ result: a, docIds } = await ingestAndScore(serverA.client, test, settings));
      log(`A: nDCG@10 ${a.ndcg_at_10.toFixed(5)}; restarting the server with model B…`);
    } finally {
      await stopEvalServer(serverA, log);
    }

    const serverB = await startEvalServer({ ...settings, dataDir: dataDir.dir, model: options.compareModel });
    try {
      log(`B: server ${serverB.url} (same data dir) is ready`);
      const { result: b, reembed } = await reembedAndScore(serverB.client, test, settings, docIds);
      const comparison = compareEvaluations(a.per_query, b.per_query, { top: options.top });
      const cutover = await decideCutover(serverB.client, EVAL_COLLECTION, comparison, {
        requested: options.cutoverIfBetter === true,
        minDelta,
        log,
      });
      return {
        dataset: a.dataset,
        dataset_dir: a.dataset_dir,
        split: a.split,
        collection: EVAL_COLLECTION,
        a,
        b,
        reembed,
        comparison,
        cutover,
        data_dir: settings.dataDir === undefined ? null : dataDir.dir,
        eval_seconds: round((performance.now() - started) / 1000, 2),
      };
    } finally {
      await stopEvalServer(serverB, log);
    }
  } finally {
    dataDir.cleanup();
  }
}

/** Re-embeds `eval` into its next version with the running server's model and scores that version. */
async function reembedAndScore(
  client: RagEmbedClient,
  test: TestQueries,
  settings: EvalSettings,
  docIds: ReadonlySet<string>,
): Promise<{ result: EvalResult; reembed: ReembedRun }> {
  const { log } = settings;
  const started = performance.now();
  const modelInfo = await client.modelInfo();
  log(`model ${modelInfo.model_source} (profile ${modelInfo.profile}, max ${modelInfo.max_tokens} tokens)`);
  const accepted = await client.reembed(EVAL_COLLECTION);
  const version = accepted.to_version;
  log(
    `re-embedding ${accepted.count} chunks of ${accepted.from_version} into ${version} (job ${accepted.job_id})…`,
  );
  if (accepted.skipped > 0) {
    throw new Error(`The re-embed skipped ${accepted.skipped} chunks whose text could not be read back`);
  }
  const { totals, truncated } = await waitForJobs(client, [accepted.job_id], log);
  const seconds = (performance.now() - started) / 1000;
  if (totals.stored !== docIds.size) {
    throw new Error(`Re-embedded ${totals.stored} of ${docIds.size} documents: ${JSON.stringify(totals)}`);
  }
  const storedPoints = await checkStoredPoints(client, version, test.queries[0], docIds);
  log(`re-embedded ${totals.stored} documents in ${seconds.toFixed(1)} s; ${test.queries.length} queries…`);
  const score = await scoreCollection(client, version, test, settings);
  const result = toEvalResult({
    datasetDir: settings.datasetDir,
    split: settings.split,
    collection: version,
    builtBy: "reembed",
    modelInfo,
    docs: docIds.size,
    storedPoints,
    truncated,
    skippedEmpty: 0,
    buildSeconds: seconds,
    topK: settings.topK,
    score,
    started,
    now: performance.now(),
  });
  return {
    result,
    reembed: {
      job_id: accepted.job_id,
      count: accepted.count,
      skipped: accepted.skipped,
      from_version: accepted.from_version,
      to_version: version,
      seconds: round(seconds, 2),
    },
  };
}

/** Both tables, the comparison, and what happened to the collection's name. */
export function formatCompare(result: CompareResult): string {
  const { a, b, cutover } = result;
  return [
    "A",
    formatTable(a),
    "",
    "B",
    formatTable(b),
    "",
    formatComparison(result.comparison, {
      a: `${a.model} (${a.collection})`,
      b: `${b.model} (${b.collection})`,
    }),
    "",
    formatDecision(result.collection, cutover),
  ].join("\n");
}
