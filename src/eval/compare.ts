/**
 * Compares two evaluations of the same queries (two versions of one collection, two models): the
 * difference of the means and, per query, which queries gained or lost most. Pure: no I/O.
 */

/** One query's scores in one evaluation (the `per_query` rows of an eval result). */
export interface QueryScores {
  query_id: string;
  ndcg_at_10: number;
  recall_at_100: number;
}

export interface QueryDifference {
  query_id: string;
  ndcg_at_10_a: number;
  ndcg_at_10_b: number;
  /** b − a: positive when the second version ranks this query better. */
  ndcg_at_10_delta: number;
  recall_at_100_a: number;
  recall_at_100_b: number;
  recall_at_100_delta: number;
}

export interface Comparison {
  ndcg_at_10_a: number;
  ndcg_at_10_b: number;
  ndcg_at_10_delta: number;
  recall_at_100_a: number;
  recall_at_100_b: number;
  recall_at_100_delta: number;
  queries: number;
  /** Queries whose nDCG@10 rose, stayed, fell. */
  improved: number;
  unchanged: number;
  regressed: number;
  /** Every query, largest nDCG@10 gain first, largest loss last (ties: query id ascending). */
  per_query: QueryDifference[];
  /** The `top` largest gains, largest first. */
  most_improved: QueryDifference[];
  /** The `top` largest losses, largest first. */
  most_regressed: QueryDifference[];
}

/** Deltas this small are rounding noise (the eval rounds scores to 5 digits). */
const EPSILON = 1e-9;

function round(value: number): number {
  return Math.round(value * 1e5) / 1e5;
}

function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((sum, value) => sum + value, 0) / values.length;
}

/**
 * Both evaluations must cover the same queries: a query scored by one only would make the two means
 * incomparable, so that is an error rather than a silent 0.
 */
export function compareEvaluations(
  a: readonly QueryScores[],
  b: readonly QueryScores[],
  options: { top?: number } = {},
): Comparison {
  const top = options.top ?? 10;
  const byId = new Map<string, QueryScores>();
  for (const row of b) {
    if (byId.has(row.query_id))
      throw new Error(`Query ${row.query_id} appears twice in the second evaluation`);
    byId.set(row.query_id, row);
  }
  const seen = new Set<string>();
  const rows: QueryDifference[] = [];
  for (const row of a) {
    if (seen.has(row.query_id))
      throw new Error(`Query ${row.query_id} appears twice in the first evaluation`);
    seen.add(row.query_id);
    const other = byId.get(row.query_id);
    if (!other) throw new Error(`Query ${row.query_id} was evaluated in the first evaluation only`);
    rows.push({
      query_id: row.query_id,
      ndcg_at_10_a: row.ndcg_at_10,
      ndcg_at_10_b: other.ndcg_at_10,
      ndcg_at_10_delta: round(other.ndcg_at_10 - row.ndcg_at_10),
      recall_at_100_a: row.recall_at_100,
      recall_at_100_b: other.recall_at_100,
      recall_at_100_delta: round(other.recall_at_100 - row.recall_at_100),
    });
  }
  const onlyB = [...byId.keys()].filter((id) => !seen.has(id));
  if (onlyB.length > 0) throw new Error(`Query ${onlyB[0]} was evaluated in the second evaluation only`);

  const perQuery = [...rows].sort(
    (x, y) =>
      y.ndcg_at_10_delta - x.ndcg_at_10_delta ||
      (x.query_id < y.query_id ? -1 : x.query_id > y.query_id ? 1 : 0),
  );
  const gains = perQuery.filter((row) => row.ndcg_at_10_delta > EPSILON);
  const losses = perQuery.filter((row) => row.ndcg_at_10_delta < -EPSILON);
  // Largest loss first; among equal losses, query id ascending like the gains.
  const lossesFirst = [...losses].sort(
    (x, y) =>
      x.ndcg_at_10_delta - y.ndcg_at_10_delta ||
      (x.query_id < y.query_id ? -1 : x.query_id > y.query_id ? 1 : 0),
  );
  const ndcgA = mean(rows.map((row) => row.ndcg_at_10_a));
  const ndcgB = mean(rows.map((row) => row.ndcg_at_10_b));
  const recallA = mean(rows.map((row) => row.recall_at_100_a));
  const recallB = mean(rows.map((row) => row.recall_at_100_b));
  return {
    ndcg_at_10_a: round(ndcgA),
    ndcg_at_10_b: round(ndcgB),
    ndcg_at_10_delta: round(ndcgB - ndcgA),
    recall_at_100_a: round(recallA),
    recall_at_100_b: round(recallB),
    recall_at_100_delta: round(recallB - recallA),
    queries: rows.length,
    improved: gains.length,
    unchanged: rows.length - gains.length - losses.length,
    regressed: losses.length,
    per_query: perQuery,
    most_improved: gains.slice(0, top),
    most_regressed: lossesFirst.slice(0, top),
  };
}

function signed(value: number): string {
  return `${value >= 0 ? "+" : ""}${value.toFixed(5)}`;
}

/** The comparison printed after both tables: means, their difference, the queries that moved most. */
export function formatComparison(comparison: Comparison, labels: { a: string; b: string }): string {
  const lines = [
    `             ${"A".padStart(9)}  ${"B".padStart(9)}  ${"B - A".padStart(9)}`,
    `nDCG@10      ${comparison.ndcg_at_10_a.toFixed(5).padStart(9)}  ${comparison.ndcg_at_10_b.toFixed(5).padStart(9)}  ${signed(comparison.ndcg_at_10_delta).padStart(9)}`,
    `Recall@100   ${comparison.recall_at_100_a.toFixed(5).padStart(9)}  ${comparison.recall_at_100_b.toFixed(5).padStart(9)}  ${signed(comparison.recall_at_100_delta).padStart(9)}`,
    `A = ${labels.a}`,
    `B = ${labels.b}`,
    `queries: ${comparison.queries} (nDCG@10 better with B: ${comparison.improved}, same: ${comparison.unchanged}, worse: ${comparison.regressed})`,
  ];
  const list = (title: string, rows: QueryDifference[]) => {
    if (rows.length === 0) return;
    lines.push(title);
    for (const row of rows) {
      lines.push(
        `  ${row.query_id.padEnd(12)} ${row.ndcg_at_10_a.toFixed(5)} -> ${row.ndcg_at_10_b.toFixed(5)}  (${signed(row.ndcg_at_10_delta)})`,
      );
    }
  };
  list("most improved (nDCG@10):", comparison.most_improved);
  list("most regressed (nDCG@10):", comparison.most_regressed);
  return lines.join("\n");
}
