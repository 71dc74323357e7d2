import { performance } from "node:perf_hooks";
import type { RagEmbedClient } from "../client/index.js";
import type { SearchHit } from "../client/types.js";
import type { EvalQuery, TestQueries } from "./eval-dataset.js";
import { evaluateRun, type RetrievalMetrics, type Run, type ScoredDoc } from "./retrieval-metrics.js";

/** The store's largest top_k: a search that large lists every stored point of a small corpus. */
const MAX_TOP_K = 10_000;

/**
 * Counts the points of `collection` through search (one as deep as the corpus lists every point
 * once) and checks there is exactly one per document; null when the corpus is too large to list.
 */
export async function checkStoredPoints(
  client: RagEmbedClient,
  collection: string,
  probe: EvalQuery | undefined,
  docIds: ReadonlySet<string>,
): Promise<number | null> {
  if (docIds.size > MAX_TOP_K || !probe) return null;
  const all = await client.search(collection, probe.text, { topK: MAX_TOP_K });
  const ids = new Set(all.hits.map((hit) => hit.id));
  const unknown = [...ids].filter((id) => !docIds.has(id));
  if (all.hits.length !== docIds.size || ids.size !== docIds.size || unknown.length > 0) {
    throw new Error(
      `Expected ${docIds.size} stored points in ${collection}, one per document; found ${all.hits.length} points, ${ids.size} distinct ids, ${unknown.length} unknown`,
    );
  }
  return all.hits.length;
}

/**
 * Hits as judged documents: a window of a split chunk (`<chunk id>#<n>`, payload `parent_chunk_id`)
 * stands for its chunk, and a chunk counts once, at its best window's rank and score (hits come best
 * first). The eval's own collections are truncated, never split; a collection compared on a running
 * server may be.
 */
export function rankedDocuments(hits: readonly SearchHit[]): ScoredDoc[] {
  const seen = new Set<string>();
  const docs: ScoredDoc[] = [];
  for (const hit of hits) {
    const parent = hit.payload.parent_chunk_id;
    const docId = typeof parent === "string" ? parent : hit.id;
    if (seen.has(docId)) continue;
    seen.add(docId);
    docs.push({ docId, score: hit.score });
  }
  return docs;
}

export interface CollectionScore {
  metrics: RetrievalMetrics;
  /** query id → search latency in ms. */
  latencies: Map<string, number>;
}

/** Searches every test query in `collection`, a few in flight, and scores the hits against the qrels. */
export async function scoreCollection(
  client: RagEmbedClient,
  collection: string,
  test: TestQueries,
  options: { topK: number; concurrency: number },
): Promise<CollectionScore> {
  const { queries } = test;
  const run: Run = new Map();
  const latencies = new Map<string, number>();
  let next = 0;
  const worker = async () => {
    for (;;) {
      const query = queries[next];
      next += 1;
      if (!query) return;
      const t0 = performance.now();
      const result = await client.search(collection, query.text, { topK: options.topK });
      latencies.set(query.id, performance.now() - t0);
      // Scores are similarities, best first; a rising score means a flipped distance somewhere.
      result.hits.forEach((hit, index) => {
        const previous = result.hits[index - 1];
        if (previous && hit.score > previous.score) {
          throw new Error(`Search hits for query ${query.id} are not in descending score order`);
        }
      });
      run.set(query.id, rankedDocuments(result.hits));
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency) }, worker));
  const metrics = evaluateRun(test.qrels, run, { ndcgK: 10, recallK: options.topK });
  return { metrics, latencies };
}
