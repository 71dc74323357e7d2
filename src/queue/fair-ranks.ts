/**
 * Fair queuing across collections (start-time fair queuing with a fixed share). Every queued chunk
 * gets a rank; workers take the lowest rank first and, within a rank, the oldest chunk. A
 * collection puts at most `share` chunks into each rank, continuing from where its previous
 * request stopped, and never below the rank being served now (`head`). So a fresh small job of one
 * collection waits for at most one rank of every other collection (`share` chunks each), however
 * large their backlog: no collection can starve another, by construction.
 *
 * Both queues use it: the SQLite queue orders its reservations by rank, the BullMQ queue gives each
 * job the rank as its BullMQ priority.
 */

/** Chunks one collection places in each rank: about one reservation's worth of short texts. */
export const FAIR_SHARE = 64;

/**
 * A background request (a re-embed's copies) places this many times fewer chunks per rank than a
 * live one: while both wait, live ingest gets that many chunks embedded for each background one,
 * and once nothing else waits the background job runs at full speed (ranks are only an order).
 */
export const BACKGROUND_SHARE_DIVISOR = 8;

/** Chunks per rank for a request: the queue's share, or a fraction of it for background work. */
export function requestShare(share: number, background: boolean | undefined): number {
  return background ? Math.max(1, Math.floor(share / BACKGROUND_SHARE_DIVISOR)) : share;
}

/** Where a collection's latest chunk went: its rank and how many of its chunks that rank holds. */
export interface RankCursor {
  rank: number;
  fill: number;
}

/**
 * Ranks for `count` new chunks of one collection.
 * @param head the lowest rank still waiting in the queue (0 when nothing waits)
 * @param last the collection's cursor after its previous request, if any chunk of it may still wait
 */
export function fairRanks(
  head: number,
  last: RankCursor | undefined,
  count: number,
  share: number = FAIR_SHARE,
  maxRank: number = Number.MAX_SAFE_INTEGER,
): { ranks: number[]; cursor: RankCursor } {
  let { rank, fill } = last !== undefined && last.rank >= head ? last : { rank: head, fill: 0 };
  const ranks: number[] = [];
  for (let i = 0; i < count; i++) {
    if (fill >= share) {
      // Past the largest rank the queue can hold, the rest share the last one (plain FIFO).
      rank = Math.min(rank + 1, maxRank);
      fill = 0;
    }
    ranks.push(rank);
    fill += 1;
  }
  return { ranks, cursor: { rank, fill } };
}
