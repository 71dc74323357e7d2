import { AppError } from "../domain/errors.js";
import { overlapVerdict, topKOverlap } from "../domain/result-overlap.js";
import type { SearchHit } from "../domain/types.js";
import type { VectorStore } from "../vector-store/vector-store.js";
import type { CutoverCheck } from "../wire/requests.js";
import type { CutoverCheckReport } from "../wire/responses.js";
import type { AppDeps } from "./app-deps.js";
import { embedderOfVersion } from "./served-embedders.js";

/** top_k of a check that names none. */
export const DEFAULT_CHECK_TOP_K = 10;

/**
 * The cutover check: every sample query is embedded with the model of the version the collection's
 * name reaches and searched there, and embedded with the next version's model and searched there;
 * the overlap of the two top-k answers (chunk ids; a window counts as its chunk) is averaged. Passed
 * when the mean reaches `min_overlap`; otherwise `409 cutover_check_failed` with every overlap, and
 * nothing changes. Both versions' models must be served here (`model_not_served` otherwise), checked
 * before anything is embedded. Work: 2 embeds of at most 100 queries, 2 searches per query.
 */
export async function checkCutover(
  deps: AppDeps,
  store: Pick<VectorStore, "describeCollection" | "search">,
  versions: { collection: string; from: string; to: string },
  check: CutoverCheck,
): Promise<CutoverCheckReport> {
  const { collection, from, to } = versions;
  const topK = check.top_k ?? DEFAULT_CHECK_TOP_K;
  // The active version is searched under the collection's name (what clients reach): version 1's
  // own name is shadowed by the alias once one exists.
  const [active, next] = await Promise.all([
    store.describeCollection(collection),
    store.describeCollection(to),
  ]);
  if (active === null || next === null) {
    throw new AppError("no_version", `Collection "${collection}" has no version "${to}" to check`, {
      details: { collection, active_version: from, next_version: to },
    });
  }
  const activeEmbedder = embedderOfVersion(deps, collection, from, active.binding);
  const nextEmbedder = embedderOfVersion(deps, collection, to, next.binding);
  const [activeVectors, nextVectors] = await Promise.all([
    activeEmbedder.embed(check.queries, "query"),
    nextEmbedder.embed(check.queries, "query"),
  ]);
  const overlaps: number[] = [];
  // One query at a time: a check of 100 queries must not take the store from live searches.
  for (let index = 0; index < check.queries.length; index += 1) {
    const activeVector = activeVectors.vectors[index];
    const nextVector = nextVectors.vectors[index];
    if (activeVector === undefined || nextVector === undefined) {
      throw new AppError("internal_error", "The embedder returned fewer vectors than queries");
    }
    const activeHits = await store.search(collection, activeVector, topK);
    const nextHits = await store.search(to, nextVector, topK);
    overlaps.push(topKOverlap(chunkIds(activeHits), chunkIds(nextHits), topK));
  }
  const verdict = overlapVerdict(overlaps, check.min_overlap);
  const report: CutoverCheckReport = {
    top_k: topK,
    min_overlap: check.min_overlap,
    mean_overlap: verdict.mean,
    passed: verdict.passed,
    queries: check.queries.map((query, index) => ({ query, overlap: overlaps[index] as number })),
  };
  if (!verdict.passed) {
    throw new AppError(
      "cutover_check_failed",
      `The answers of "${to}" overlap those of "${from}" by ${verdict.mean.toFixed(3)} on average over ${overlaps.length} queries (top ${topK}); at least ${check.min_overlap} was asked: nothing was changed`,
      { details: { collection, active_version: from, next_version: to, ...report } },
    );
  }
  return report;
}

/** The client's chunk id of each hit: a window of a split chunk stands for its chunk. */
function chunkIds(hits: SearchHit[]): string[] {
  return hits.map((hit) => {
    const parent = hit.payload.parent_chunk_id;
    return typeof parent === "string" ? parent : hit.chunkId;
  });
}
