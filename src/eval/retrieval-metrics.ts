/**
 * nDCG@k and Recall@k computed the way pytrec_eval (trec_eval 9.x) computes `ndcg_cut_k` and
 * `recall_k`, which is what MTEB and BEIR report. Pure: no I/O.
 *
 * - Ranking: by score descending; equal scores are ordered by document id DESCENDING, comparing
 *   the ids' bytes (trec_eval's `comp_sim_docno`: `strcmp(ptr2->docno, ptr1->docno)`). The order the
 *   run lists its documents in does not matter, only their scores.
 * - Gain is the grade itself (linear gain); discount log2(rank + 1) with rank 1-based.
 *   Grades <= 0 give no gain and do not count as relevant (trec_eval relevance_level 1).
 * - IDCG@k: the qrels' positive grades sorted descending, cut at k. A query with no relevant
 *   document scores 0 (trec_eval returns 0 when the ideal DCG is 0).
 * - Recall@k: relevant documents in the top k / all relevant documents of the query.
 * - Queries evaluated: every query of the qrels. A qrels query missing from the run (or with an empty
 *   hit list) scores 0 on both metrics (trec_eval's `-c`). pytrec_eval would drop it from the mean
 *   instead; MTEB searches every query and always gets hits back, so both choices give MTEB's number,
 *   and counting it as 0 keeps a query the server failed to answer from silently improving the score.
 *   Run queries that are not in the qrels are ignored.
 * - The reported value is the arithmetic mean over the evaluated queries.
 */

/** queryId → (docId → relevance grade). */
export type Qrels = Map<string, Map<string, number>>;

export interface ScoredDoc {
  docId: string;
  score: number;
}

/** queryId → retrieved documents with their scores (any order). */
export type Run = Map<string, ScoredDoc[]>;

export interface QueryMetrics {
  queryId: string;
  ndcg: number;
  recall: number;
  /** Documents the run returned for the query. */
  retrieved: number;
  /** Relevant documents (grade > 0) in the qrels. */
  relevant: number;
}

export interface RetrievalMetrics {
  ndcgAtK: number;
  recallAtK: number;
  ndcgK: number;
  recallK: number;
  /** Queries averaged over (= queries in the qrels). */
  queries: number;
  /** Qrels queries the run has no document for (each scored 0). */
  missingFromRun: number;
  perQuery: QueryMetrics[];
}

export interface EvaluateOptions {
  /** Cut-off for nDCG (MTEB's main score: 10). */
  ndcgK?: number;
  /** Cut-off for recall (100 here). */
  recallK?: number;
  /**
   * Drop retrieved documents whose id equals the query id before ranking (BEIR's and MTEB v1's
   * `ignore_identical_ids=True`). Off by default; irrelevant for SciFact, whose test query ids are
   * never corpus ids.
   */
  ignoreIdenticalIds?: boolean;
}

/** trec_eval's order: score descending, then document id descending by bytes (strcmp). */
export function rankDocuments(docs: readonly ScoredDoc[]): ScoredDoc[] {
  const seen = new Set<string>();
  for (const doc of docs) {
    if (seen.has(doc.docId)) throw new Error(`Document ${doc.docId} appears twice in one ranking`);
    seen.add(doc.docId);
  }
  return [...docs].sort((a, b) => {
    if (a.score > b.score) return -1;
    if (a.score < b.score) return 1;
    return Buffer.compare(Buffer.from(b.docId), Buffer.from(a.docId));
  });
}

function discount(rank: number): number {
  return Math.log2(rank + 1);
}

/** nDCG@k of one query: `ranked` must already be in rank order (see rankDocuments). */
export function ndcgAtK(
  judgements: ReadonlyMap<string, number>,
  ranked: readonly ScoredDoc[],
  k: number,
): number {
  const ideal = [...judgements.values()]
    .filter((grade) => grade > 0)
    .sort((a, b) => b - a)
    .slice(0, k);
  let idcg = 0;
  ideal.forEach((grade, index) => {
    idcg += grade / discount(index + 1);
  });
  if (idcg === 0) return 0;
  let dcg = 0;
  ranked.slice(0, k).forEach((doc, index) => {
    const grade = judgements.get(doc.docId) ?? 0;
    if (grade > 0) dcg += grade / discount(index + 1);
  });
  return dcg / idcg;
}

/** Recall@k of one query: `ranked` must already be in rank order (see rankDocuments). */
export function recallAtK(
  judgements: ReadonlyMap<string, number>,
  ranked: readonly ScoredDoc[],
  k: number,
): number {
  let relevant = 0;
  for (const grade of judgements.values()) if (grade > 0) relevant += 1;
  if (relevant === 0) return 0;
  let found = 0;
  for (const doc of ranked.slice(0, k)) if ((judgements.get(doc.docId) ?? 0) > 0) found += 1;
  return found / relevant;
}

export function evaluateRun(qrels: Qrels, run: Run, options: EvaluateOptions = {}): RetrievalMetrics {
  const ndcgK = options.ndcgK ?? 10;
  const recallK = options.recallK ?? 100;
  const perQuery: QueryMetrics[] = [];
  let missingFromRun = 0;
  for (const [queryId, judgements] of qrels) {
    let docs = run.get(queryId) ?? [];
    if (options.ignoreIdenticalIds) docs = docs.filter((doc) => doc.docId !== queryId);
    if (docs.length === 0) missingFromRun += 1;
    const ranked = rankDocuments(docs);
    let relevant = 0;
    for (const grade of judgements.values()) if (grade > 0) relevant += 1;
    perQuery.push({
      queryId,
      ndcg: ndcgAtK(judgements, ranked, ndcgK),
      recall: recallAtK(judgements, ranked, recallK),
      retrieved: ranked.length,
      relevant,
    });
  }
  const mean = (values: number[]) =>
    values.length === 0 ? 0 : values.reduce((sum, value) => sum + value, 0) / values.length;
  return {
    ndcgAtK: mean(perQuery.map((q) => q.ndcg)),
    recallAtK: mean(perQuery.map((q) => q.recall)),
    ndcgK,
    recallK,
    queries: perQuery.length,
    missingFromRun,
    perQuery,
  };
}
