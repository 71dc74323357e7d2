import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  evaluateRun,
  ndcgAtK,
  type Qrels,
  type Run,
  rankDocuments,
  recallAtK,
  type ScoredDoc,
} from "../../src/eval/retrieval-metrics.js";

const close = (actual: number, expected: number, what = "value") =>
  assert.ok(Math.abs(actual - expected) < 1e-9, `${what}: expected ${expected}, got ${actual}`);

const judged = (entries: Record<string, number>) => new Map(Object.entries(entries));

/** Documents listed best first; scores descend from 1 so the listed order is the ranking. */
function ranked(ids: string[]): ScoredDoc[] {
  return ids.map((docId, index) => ({ docId, score: 1 - index / 1000 }));
}

/** log2(rank + 1), the discount of a 1-based rank. */
const d = (rank: number) => Math.log2(rank + 1);

describe("retrieval metrics (pytrec_eval / MTEB semantics)", () => {
  it("graded relevance: linear gain, log2(rank+1) discount, ideal from the sorted grades", () => {
    // qrels: a=2, b=1, c=1. Ranking: x, b, a, y, c.
    // DCG@10  = 0/log2(2) + 1/log2(3) + 2/log2(4) + 0/log2(5) + 1/log2(6)
    //         = 0.6309298 + 1 + 0.3868528 = 2.0177826
    // IDCG@10 = 2/log2(2) + 1/log2(3) + 1/log2(4) = 2 + 0.6309298 + 0.5 = 3.1309298
    // nDCG@10 = 2.0177826 / 3.1309298 = 0.6444675
    const qrels = judged({ a: 2, b: 1, c: 1 });
    const run = ranked(["x", "b", "a", "y", "c"]);
    const expected = (1 / d(2) + 2 / d(3) + 1 / d(5)) / (2 / d(1) + 1 / d(2) + 1 / d(3));
    close(ndcgAtK(qrels, run, 10), expected, "nDCG@10");
    close(ndcgAtK(qrels, run, 10), 0.6444675286963276, "nDCG@10 literal");
    // Recall@100 = 3 relevant retrieved / 3 relevant = 1; Recall@2 = 1 (b) / 3.
    close(recallAtK(qrels, run, 100), 1, "Recall@100");
    close(recallAtK(qrels, run, 2), 1 / 3, "Recall@2");
  });

  it("grades <= 0 are not relevant and give no gain", () => {
    // qrels: a=0, b=1. Ranking: a, b. DCG = 0 + 1/log2(3); IDCG = 1/log2(2) = 1 → 0.6309298.
    const qrels = judged({ a: 0, b: 1 });
    close(ndcgAtK(qrels, ranked(["a", "b"]), 10), 1 / d(2));
    // Only b counts: recall@1 = 0/1, recall@2 = 1/1.
    close(recallAtK(qrels, ranked(["a", "b"]), 1), 0);
    close(recallAtK(qrels, ranked(["a", "b"]), 2), 1);
  });

  it("ties in score: document id descending, by bytes, as trec_eval's comp_sim_docno", () => {
    const order = rankDocuments([
      { docId: "a", score: 0.5 },
      { docId: "b", score: 0.5 },
      { docId: "c", score: 0.9 },
      { docId: "a10", score: 0.1 },
      { docId: "a9", score: 0.1 },
      { docId: "B", score: 0.1 },
    ]).map((doc) => doc.docId);
    // 0.9 first; then the 0.5 tie b > a; then the 0.1 tie: strcmp order descending:
    // "a9" > "a10" ('9' > '1'), and "a..." > "B" (0x61 > 0x42).
    assert.deepEqual(order, ["c", "b", "a", "a9", "a10", "B"]);

    // qrels: b=1. Run lists a before b with the same score, c above both.
    // Ranking c, b, a → b at rank 2: nDCG@10 = (1/log2(3)) / (1/log2(2)) = 0.6309298
    // (an ascending tie-break would put b at rank 3: 0.5).
    const qrels: Qrels = new Map([["q", judged({ b: 1 })]]);
    const run: Run = new Map([
      [
        "q",
        [
          { docId: "a", score: 0.5 },
          { docId: "b", score: 0.5 },
          { docId: "c", score: 0.9 },
        ],
      ],
    ]);
    close(evaluateRun(qrels, run).ndcgAtK, 0.6309297535714575);
  });

  it("a query with no relevant document retrieved scores 0 on both metrics", () => {
    const qrels: Qrels = new Map([["q", judged({ z: 1 })]]);
    const run: Run = new Map([["q", ranked(["a", "b", "c"])]]);
    const metrics = evaluateRun(qrels, run);
    assert.equal(metrics.ndcgAtK, 0);
    assert.equal(metrics.recallAtK, 0);
    assert.equal(metrics.missingFromRun, 0);
  });

  it("more relevant documents than k: the ideal is cut at k", () => {
    // 12 relevant (r1..r12, grade 1). Ranking: r1..r5, then 14 misses, then r6..r12 (ranks 20..26).
    // DCG@10  = Σ_{i=1..5} 1/log2(i+1) = 1 + 0.6309 + 0.5 + 0.4307 + 0.3869 = 2.9484591
    // IDCG@10 = Σ_{i=1..10} 1/log2(i+1) = 4.5435593 (only 10 of the 12 fit in the top 10)
    // nDCG@10 = 0.6489316; Recall@100 = 12/12 = 1; Recall@10 = 5/12.
    const relevant = Array.from({ length: 12 }, (_, i) => `r${i + 1}`);
    const qrels = judged(Object.fromEntries(relevant.map((id) => [id, 1])));
    const misses = Array.from({ length: 14 }, (_, i) => `x${i}`);
    const run = ranked([...relevant.slice(0, 5), ...misses, ...relevant.slice(5)]);
    let dcg = 0;
    for (let rank = 1; rank <= 5; rank += 1) dcg += 1 / d(rank);
    let idcg = 0;
    for (let rank = 1; rank <= 10; rank += 1) idcg += 1 / d(rank);
    close(ndcgAtK(qrels, run, 10), dcg / idcg);
    close(ndcgAtK(qrels, run, 10), 0.6489315753318465, "literal");
    close(recallAtK(qrels, run, 100), 1);
    close(recallAtK(qrels, run, 10), 5 / 12);
  });

  it("a perfect run scores nDCG@10 = 1 and Recall@100 = 1", () => {
    const qrels: Qrels = new Map([
      ["q1", judged({ a: 2, b: 1 })],
      ["q2", judged({ c: 1 })],
    ]);
    const filler = Array.from({ length: 98 }, (_, i) => `f${i}`);
    const run: Run = new Map([
      ["q1", ranked(["a", "b", ...filler])],
      ["q2", ranked(["c", ...filler])],
    ]);
    const metrics = evaluateRun(qrels, run);
    assert.equal(metrics.ndcgAtK, 1);
    assert.equal(metrics.recallAtK, 1);
    assert.equal(metrics.queries, 2);
  });

  it("an inverted run: the relevant documents at ranks 99 and 100 of 100", () => {
    // qrels: a=1, b=1; the run is the perfect run reversed: a at rank 99, b at rank 100.
    // nDCG@10 = 0 (nothing relevant in the top 10); Recall@100 = 2/2 = 1.
    // nDCG@100 = (1/log2(100) + 1/log2(101)) / (1/log2(2) + 1/log2(3))
    //          = (0.1505150 + 0.1501905) / 1.6309298 = 0.1843767
    const filler = Array.from({ length: 98 }, (_, i) => `f${String(i).padStart(2, "0")}`);
    const perfect = ranked(["b", "a", ...filler]);
    const inverted = perfect.map((doc) => ({ docId: doc.docId, score: -doc.score }));
    const qrels: Qrels = new Map([["q", judged({ a: 1, b: 1 })]]);
    const run: Run = new Map([["q", inverted]]);
    const metrics = evaluateRun(qrels, run);
    assert.equal(metrics.ndcgAtK, 0);
    assert.equal(metrics.recallAtK, 1);
    const ranking = rankDocuments(inverted);
    assert.equal(ranking[98]?.docId, "a");
    assert.equal(ranking[99]?.docId, "b");
    close(evaluateRun(qrels, run, { ndcgK: 100 }).ndcgAtK, (1 / d(99) + 1 / d(100)) / (1 + 1 / d(2)));
    close(evaluateRun(qrels, run, { ndcgK: 100 }).ndcgAtK, 0.18437672155847604, "literal");
  });

  it("a qrels query absent from the run scores 0 and stays in the mean; run-only queries are ignored", () => {
    // q1 perfect (1, 1), q2 absent (0, 0): mean nDCG@10 = (1 + 0) / 2 = 0.5, Recall@100 = 0.5.
    // q3 has no qrels: pytrec_eval ignores it, so do we.
    const qrels: Qrels = new Map([
      ["q1", judged({ a: 1 })],
      ["q2", judged({ b: 1 })],
    ]);
    const run: Run = new Map([
      ["q1", ranked(["a", "x"])],
      ["q3", ranked(["b"])],
    ]);
    const metrics = evaluateRun(qrels, run);
    assert.equal(metrics.queries, 2);
    assert.equal(metrics.missingFromRun, 1);
    close(metrics.ndcgAtK, 0.5);
    close(metrics.recallAtK, 0.5);
    assert.deepEqual(
      metrics.perQuery.map((q) => [q.queryId, q.ndcg, q.recall, q.retrieved]),
      [
        ["q1", 1, 1, 2],
        ["q2", 0, 0, 0],
      ],
    );
  });

  it("the mean is over queries: two queries at 0.6309298 and 1 average 0.8154649", () => {
    // q1: relevant at rank 2 → 1/log2(3) = 0.6309298; q2 perfect → 1. Mean = 0.8154649.
    const qrels: Qrels = new Map([
      ["q1", judged({ b: 1 })],
      ["q2", judged({ c: 1 })],
    ]);
    const run: Run = new Map([
      ["q1", ranked(["a", "b"])],
      ["q2", ranked(["c"])],
    ]);
    close(evaluateRun(qrels, run).ndcgAtK, (1 / d(2) + 1) / 2);
  });

  it("ignoreIdenticalIds drops a hit whose id is the query id (BEIR's option), off by default", () => {
    // qrels q: r=1. Ranking: q, r. Kept: r at rank 2 → 0.6309298. Dropped: r at rank 1 → 1.
    const qrels: Qrels = new Map([["q", judged({ r: 1 })]]);
    const run: Run = new Map([["q", ranked(["q", "r"])]]);
    close(evaluateRun(qrels, run).ndcgAtK, 1 / d(2));
    close(evaluateRun(qrels, run, { ignoreIdenticalIds: true }).ndcgAtK, 1);
  });

  it("a document twice in one ranking is an error (trec_eval refuses duplicates)", () => {
    assert.throws(() => rankDocuments(ranked(["a", "a"])), /twice/);
  });
});
