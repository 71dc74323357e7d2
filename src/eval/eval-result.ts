import { basename } from "node:path";
import type { CollectionScore } from "./score-collection.js";

export interface PerQueryResult {
  query_id: string;
  hits: number;
  latency_ms: number;
  ndcg_at_10: number;
  recall_at_100: number;
}

/** One collection (version) scored on one dataset: what `npm run eval` prints and writes. */
export interface EvalResult {
  dataset: string;
  dataset_dir: string;
  split: string;
  /** The collection (or version, e.g. `eval__v2`) searched. */
  collection: string;
  /** How its points were written: the corpus ingested over HTTP, or a re-embed of a version. */
  built_by: "ingest" | "reembed";
  model: string;
  model_info: Record<string, unknown>;
  docs: number;
  stored_points: number | null;
  truncated_docs: number;
  skipped_empty_docs: number;
  queries: number;
  queries_missing_hits: number;
  top_k: number;
  ndcg_at_10: number;
  recall_at_100: number;
  /** Ingest (or re-embed) from the first request to the last chunk stored. */
  ingest_seconds: number;
  ingest_docs_per_second: number;
  query_p50_ms: number;
  query_p95_ms: number;
  query_max_ms: number;
  eval_seconds: number;
  per_query: PerQueryResult[];
}

/** Nearest-rank percentile. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? 0;
}

export function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

export interface EvalParts {
  datasetDir: string;
  split: string;
  collection: string;
  builtBy: EvalResult["built_by"];
  modelInfo: { model_source: string } & Record<string, unknown>;
  docs: number;
  storedPoints: number | null;
  truncated: number;
  skippedEmpty: number;
  buildSeconds: number;
  topK: number;
  score: CollectionScore;
  /** When this evaluation started (performance.now()). */
  started: number;
  now: number;
}

/** Search latency percentiles of a scored run, in ms, rounded as printed. */
export function latencySummary(score: CollectionScore): {
  query_p50_ms: number;
  query_p95_ms: number;
  query_max_ms: number;
} {
  const values = [...score.latencies.values()];
  return {
    query_p50_ms: round(percentile(values, 50), 1),
    query_p95_ms: round(percentile(values, 95), 1),
    query_max_ms: round(Math.max(0, ...values), 1),
  };
}

/** Every query's scores and latency, rounded as printed. */
export function perQueryRows(score: CollectionScore): PerQueryResult[] {
  return score.metrics.perQuery.map((q) => ({
    query_id: q.queryId,
    hits: q.retrieved,
    latency_ms: round(score.latencies.get(q.queryId) ?? 0, 1),
    ndcg_at_10: round(q.ndcg, 5),
    recall_at_100: round(q.recall, 5),
  }));
}

/** The report of one evaluation, rounded as printed. */
export function toEvalResult(parts: EvalParts): EvalResult {
  const { metrics } = parts.score;
  return {
    dataset: basename(parts.datasetDir),
    dataset_dir: parts.datasetDir,
    split: parts.split,
    collection: parts.collection,
    built_by: parts.builtBy,
    // The report names the weights measured (hub id or directory), not only the name clients use.
    model: parts.modelInfo.model_source,
    model_info: parts.modelInfo,
    docs: parts.docs,
    stored_points: parts.storedPoints,
    truncated_docs: parts.truncated,
    skipped_empty_docs: parts.skippedEmpty,
    queries: metrics.queries,
    queries_missing_hits: metrics.missingFromRun,
    top_k: parts.topK,
    ndcg_at_10: round(metrics.ndcgAtK, 5),
    recall_at_100: round(metrics.recallAtK, 5),
    ingest_seconds: round(parts.buildSeconds, 2),
    ingest_docs_per_second: round(parts.docs / parts.buildSeconds, 1),
    ...latencySummary(parts.score),
    eval_seconds: round((parts.now - parts.started) / 1000, 2),
    per_query: perQueryRows(parts.score),
  };
}

/** The short table printed at the end. */
export function formatTable(result: EvalResult): string {
  const rows: Array<[string, string]> = [
    ["dataset", `${result.dataset} (${result.split})`],
    ["model", result.model],
    ["collection", result.collection],
    [
      "docs",
      `${result.docs} (stored points ${result.stored_points ?? "n/a"}, truncated ${result.truncated_docs})`,
    ],
    ["queries", String(result.queries)],
    ["nDCG@10", result.ndcg_at_10.toFixed(5)],
    [`Recall@${result.top_k}`, result.recall_at_100.toFixed(5)],
    [
      result.built_by === "reembed" ? "re-embed" : "ingest",
      `${result.ingest_seconds.toFixed(1)} s (${result.ingest_docs_per_second} docs/s)`,
    ],
    ["query p50 / p95", `${result.query_p50_ms} ms / ${result.query_p95_ms} ms`],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join("\n");
}
