import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compareEvaluations, formatComparison, type QueryScores } from "../../src/eval/compare.js";

const q = (query_id: string, ndcg_at_10: number, recall_at_100 = ndcg_at_10): QueryScores => ({
  query_id,
  ndcg_at_10,
  recall_at_100,
});

describe("comparing two evaluations of the same queries", () => {
  const a = [
    q("1", 0.5, 0.5),
    q("2", 0.2, 0.4),
    q("3", 0.9, 1),
    q("4", 0.3, 0.3),
    q("5", 0, 0),
    q("6", 0.4, 0.4),
  ];
  // B is listed in another order: queries are matched by id, not position.
  const b = [
    q("6", 0.4, 0.4),
    q("5", 0.7, 1),
    q("4", 0.3, 0.5),
    q("3", 0.1, 0.5),
    q("2", 0.8, 0.9),
    q("1", 0.6, 0.5),
  ];
  const c = compareEvaluations(a, b, { top: 2 });

  it("per-query deltas are B minus A for both metrics", () => {
    const two = c.per_query.find((row) => row.query_id === "2");
    assert.deepEqual(two, {
      query_id: "2",
      ndcg_at_10_a: 0.2,
      ndcg_at_10_b: 0.8,
      ndcg_at_10_delta: 0.6,
      recall_at_100_a: 0.4,
      recall_at_100_b: 0.9,
      recall_at_100_delta: 0.5,
    });
    assert.equal(c.per_query.find((row) => row.query_id === "3")?.ndcg_at_10_delta, -0.8);
  });

  it("the table covers every query once, largest gain first, ties by query id", () => {
    // deltas: 1 +0.1, 2 +0.6, 3 -0.8, 4 0, 5 +0.7, 6 0
    assert.deepEqual(
      c.per_query.map((row) => row.query_id),
      ["5", "2", "1", "4", "6", "3"],
    );
  });

  it("counts and lists the largest gains and losses, cut at top", () => {
    assert.deepEqual([c.improved, c.unchanged, c.regressed], [3, 2, 1]);
    assert.deepEqual(
      c.most_improved.map((row) => row.query_id),
      ["5", "2"],
    );
    assert.deepEqual(
      c.most_regressed.map((row) => row.query_id),
      ["3"],
    );
  });

  it("losses are listed largest first", () => {
    const losses = compareEvaluations(
      [q("a", 0.5), q("b", 0.9), q("c", 0.6)],
      [q("a", 0.4), q("b", 0.1), q("c", 0.1)],
    );
    assert.deepEqual(
      losses.most_regressed.map((row) => row.query_id),
      ["b", "c", "a"],
    );
  });

  it("means and their difference", () => {
    assert.equal(c.queries, 6);
    assert.equal(c.ndcg_at_10_a, Math.round(((0.5 + 0.2 + 0.9 + 0.3 + 0 + 0.4) / 6) * 1e5) / 1e5);
    assert.equal(c.ndcg_at_10_b, Math.round(((0.6 + 0.8 + 0.1 + 0.3 + 0.7 + 0.4) / 6) * 1e5) / 1e5);
    assert.equal(c.ndcg_at_10_delta, Math.round(((2.9 - 2.3) / 6) * 1e5) / 1e5);
    assert.equal(c.recall_at_100_delta, Math.round(((3.8 - 2.6) / 6) * 1e5) / 1e5);
  });

  it("refuses evaluations of different query sets or with a repeated query", () => {
    assert.throws(() => compareEvaluations([q("1", 0), q("2", 0)], [q("1", 0)]), /first evaluation only/);
    assert.throws(() => compareEvaluations([q("1", 0)], [q("1", 0), q("9", 0)]), /second evaluation only/);
    assert.throws(() => compareEvaluations([q("1", 0), q("1", 0)], [q("1", 0)]), /twice/);
  });

  it("prints both means, the difference and the moved queries", () => {
    const text = formatComparison(c, { a: "model-a", b: "model-b" });
    assert.match(text, /nDCG@10\s+0\.38333\s+0\.48333\s+\+0\.10000/);
    assert.match(text, /most improved[^\n]*\n\s+5\s+0\.00000 -> 0\.70000\s+\(\+0\.70000\)/);
    assert.match(text, /most regressed[^\n]*\n\s+3\s+0\.90000 -> 0\.10000\s+\(-0\.80000\)/);
  });
});
