import { basename, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { RagEmbedClient } from "../client/index.js";
import type { CollectionVersions } from "../client/types.js";
import { type Comparison, compareEvaluations, formatComparison } from "./compare.js";
import { type CutoverDecision, decideCutover, formatDecision } from "./cutover-decision.js";
import { loadTestQueries } from "./eval-dataset.js";
import { latencySummary, type PerQueryResult, perQueryRows, round } from "./eval-result.js";
import { scoreCollection } from "./score-collection.js";

type CollectionVersion = CollectionVersions["versions"][number];

export interface VersionCompareOptions {
  url: string;
  apiKey?: string;
  collection: string;
  /** Version numbers [A, B]; default: the active version and the next one (cutover's target). */
  versions?: [number, number];
  dataset: string;
  split?: string;
  limitQueries?: number;
  concurrency?: number;
  topK?: number;
  cutoverIfBetter?: boolean;
  minDelta?: number;
  top?: number;
  log?: (line: string) => void;
}

export interface VersionScore {
  version: number;
  /** The name searched: the collection's for the active version, else the version's own. */
  searched_as: string;
  active: boolean;
  model: string | null;
  fingerprint: string | null;
  points: number;
  queries: number;
  queries_missing_hits: number;
  top_k: number;
  ndcg_at_10: number;
  recall_at_100: number;
  query_p50_ms: number;
  query_p95_ms: number;
  query_max_ms: number;
  per_query: PerQueryResult[];
}

export interface VersionCompareResult {
  url: string;
  collection: string;
  dataset: string;
  dataset_dir: string;
  split: string;
  a: VersionScore;
  b: VersionScore;
  comparison: Comparison;
  cutover: CutoverDecision;
  eval_seconds: number;
}

/** The two versions to compare, checked: they exist, can be searched by a name, and their models are served. */
function pickVersions(
  collection: string,
  versions: readonly CollectionVersion[],
  wanted: [number, number] | undefined,
  cutoverIfBetter: boolean,
): [CollectionVersion, CollectionVersion] {
  const active = versions.find((v) => v.active);
  const next = versions.find((v) => v.next);
  const numbers = wanted ?? [active?.version, next?.version];
  const picked = numbers.map((number, index) => {
    const found = versions.find((v) => v.version === number);
    if (found) return found;
    if (number === undefined) {
      throw new Error(
        `Collection ${collection} has no ${index === 0 ? "active" : "next"} version (POST .../reembed builds the next one)`,
      );
    }
    throw new Error(
      `Collection ${collection} has no version ${number} (it has ${versions.map((v) => v.version).join(", ")})`,
    );
  }) as [CollectionVersion, CollectionVersion];
  if (picked[0].version === picked[1].version) throw new Error("--versions names the same version twice");
  for (const version of picked) {
    // A version whose own name is the collection's (sqlite-vec's version 1) is reached by no name
    // once the collection's name reaches another version.
    if (!version.active && version.name === collection) {
      throw new Error(
        `Version ${version.version} of ${collection} cannot be searched while the name reaches another version`,
      );
    }
    if (!version.model_served) {
      throw new Error(
        `Version ${version.version} of ${collection} is bound to ${version.binding?.model ?? "no model"}, which this server does not serve: its queries would be embedded by another model`,
      );
    }
    if (version.pending_chunks > 0) {
      throw new Error(
        `Version ${version.version} of ${collection} has ${version.pending_chunks} chunks still queued`,
      );
    }
  }
  if (cutoverIfBetter && !(picked[0].active && picked[1].next)) {
    throw new Error("--cutover-if-better compares the active version (A) with the next one (B) only");
  }
  return picked;
}

/**
 * Compares two versions of a collection that already exist on a running server: the corpus is in
 * the collection already (chunk ids = corpus ids), only the queries are searched. Each version is
 * searched under the name that reaches it, and the server embeds each query with the model that
 * version is bound to, so both versions' models must be served (EMBEDDING_MODELS).
 */
export async function runVersionCompare(options: VersionCompareOptions): Promise<VersionCompareResult> {
  const started = performance.now();
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const datasetDir = resolve(options.dataset);
  const split = options.split ?? "test";
  const topK = options.topK ?? 100;
  const minDelta = options.minDelta ?? 0;
  const test = await loadTestQueries(datasetDir, split, options.limitQueries);
  const client = new RagEmbedClient({ baseUrl: options.url, apiKey: options.apiKey });
  const listing = await client.versions(options.collection);
  const picked = pickVersions(
    options.collection,
    listing.versions,
    options.versions,
    options.cutoverIfBetter === true,
  );
  const scores: VersionScore[] = [];
  for (const version of picked) {
    const name = version.active ? options.collection : version.name;
    log(
      `version ${version.version} (${name}, ${version.points} points, ${version.binding?.model}): ${test.queries.length} queries…`,
    );
    const score = await scoreCollection(client, name, test, { topK, concurrency: options.concurrency ?? 4 });
    scores.push({
      version: version.version,
      searched_as: name,
      active: version.active,
      model: version.binding?.source ?? version.binding?.model ?? null,
      fingerprint: version.binding?.fingerprint ?? null,
      points: version.points,
      queries: score.metrics.queries,
      queries_missing_hits: score.metrics.missingFromRun,
      top_k: topK,
      ndcg_at_10: round(score.metrics.ndcgAtK, 5),
      recall_at_100: round(score.metrics.recallAtK, 5),
      ...latencySummary(score),
      per_query: perQueryRows(score),
    });
  }
  const [scoreA, scoreB] = scores as [VersionScore, VersionScore];
  const comparison = compareEvaluations(scoreA.per_query, scoreB.per_query, { top: options.top });
  const cutover = await decideCutover(client, options.collection, comparison, {
    requested: options.cutoverIfBetter === true,
    minDelta,
    log,
  });
  return {
    url: options.url,
    collection: options.collection,
    dataset: basename(datasetDir),
    dataset_dir: datasetDir,
    split,
    a: scoreA,
    b: scoreB,
    comparison,
    cutover,
    eval_seconds: round((performance.now() - started) / 1000, 2),
  };
}

export function formatVersionCompare(result: VersionCompareResult): string {
  const label = (s: VersionScore) =>
    `version ${s.version} (${s.searched_as}, ${s.model ?? "no binding"}, ${s.points} points)`;
  return [
    `dataset ${result.dataset} (${result.split}), collection ${result.collection} at ${result.url}`,
    formatComparison(result.comparison, { a: label(result.a), b: label(result.b) }),
    "",
    formatDecision(result.collection, result.cutover),
  ].join("\n");
}
