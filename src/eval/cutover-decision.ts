import type { RagEmbedClient } from "../client/index.js";
import type { VersionSwap } from "../client/types.js";
import type { Comparison } from "./compare.js";

export interface CutoverDecision {
  /** --cutover-if-better was given. */
  requested: boolean;
  min_delta: number;
  ndcg_at_10_delta: number;
  /** The delta reached min_delta. */
  passed: boolean;
  /** POST cutover was sent and answered. */
  performed: boolean;
  /** Its answer. */
  swap: VersionSwap | null;
  /** The version the collection's name reaches at the end (GET /v1/collections/{c}). */
  active_version: string | null;
}

/**
 * Cuts `collection` over to its next version only when asked and B's nDCG@10 gain reaches the bar;
 * either way reports the version the name reaches afterwards, as the server says.
 */
export async function decideCutover(
  client: RagEmbedClient,
  collection: string,
  comparison: Comparison,
  options: { requested: boolean; minDelta: number; log: (line: string) => void },
): Promise<CutoverDecision> {
  const delta = comparison.ndcg_at_10_delta;
  const passed = delta >= options.minDelta;
  let swap: VersionSwap | null = null;
  if (options.requested && passed) {
    swap = await client.cutover(collection);
    options.log(`cut over: ${swap.collection} now reaches ${swap.active_version}`);
  }
  const info = await client.collection(collection);
  return {
    requested: options.requested,
    min_delta: options.minDelta,
    ndcg_at_10_delta: delta,
    passed,
    performed: swap !== null,
    swap,
    active_version: info.active_version ?? null,
  };
}

function signed(value: number): string {
  return `${value >= 0 ? "+" : ""}${value.toFixed(5)}`;
}

/** One line: what was decided and why, and where the name points now. */
export function formatDecision(collection: string, cutover: CutoverDecision): string {
  const delta = `nDCG@10 B - A ${signed(cutover.ndcg_at_10_delta)}`;
  if (!cutover.requested) {
    return `cutover: not requested (--cutover-if-better); ${collection} reaches ${cutover.active_version}`;
  }
  return cutover.performed
    ? `cutover: done, ${delta} >= ${cutover.min_delta}; ${collection} now reaches ${cutover.active_version}`
    : `cutover: not done, ${delta} < ${cutover.min_delta}; ${collection} still reaches ${cutover.active_version}`;
}
