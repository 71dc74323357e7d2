import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { packRequests } from "../../src/embedder/remote/request-packing.js";
import { RequestScheduler } from "../../src/embedder/remote/request-scheduler.js";
import { perMinuteBucket, TokenBucket } from "../../src/embedder/remote/token-bucket.js";

/** Sends requests of random cost as early as the bucket allows, on a simulated clock; returns (time, cost). */
function greedy(limit: number, largest: number, costs: number[]): Array<{ at: number; cost: number }> {
  let now = 0;
  const bucket = perMinuteBucket(limit, largest, now);
  return costs.map((cost) => {
    now += bucket.waitMs(cost, now);
    bucket.take(cost, now);
    return { at: now, cost };
  });
}

function worstWindow(sent: Array<{ at: number; cost: number }>, windowMs: number): number {
  let worst = 0;
  for (const first of sent) {
    const total = sent
      .filter((s) => s.at >= first.at && s.at < first.at + windowMs)
      .reduce((sum, s) => sum + s.cost, 0);
    worst = Math.max(worst, total);
  }
  return worst;
}

describe("per-minute buckets", () => {
  it("never put more than the limit into any 60-second window, nor much more than a second's share into one second", () => {
    for (const [limit, largest] of [
      [300, 1],
      [61, 1],
      [2, 1],
      [24_000, 256],
      [1_000, 512],
    ] as const) {
      let seed = limit;
      const random = () => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed / 2 ** 31;
      };
      const costs = Array.from({ length: 400 }, () =>
        largest === 1 ? 1 : 1 + Math.floor(random() * largest),
      );
      const sent = greedy(limit, largest, costs);
      assert.ok(worstWindow(sent, 60_000) <= limit, `${limit}/min: ${worstWindow(sent, 60_000)} in a minute`);
      const burst = Math.max(largest, Math.floor(limit / 60));
      assert.ok(
        worstWindow(sent, 1000) <= burst + (limit + 1) / 60,
        `${limit}/min: ${worstWindow(sent, 1000)} in a second`,
      );
      // And the limit is used, not wasted: after the burst, the rest of each minute's limit.
      const total = costs.reduce((a, b) => a + b, 0);
      const expectedMs = ((total - burst) / (limit - burst + 1)) * 60_000;
      // Waits are rounded up to whole milliseconds: at most 1 ms late per request.
      assert.ok(sent.at(-1)!.at <= expectedMs + costs.length, `${limit}/min is used up to its rate`);
    }
  });

  it("a limit of one or two a minute sends one request per minute or per half minute", () => {
    assert.deepEqual(
      greedy(1, 1, [1, 1, 1]).map((s) => s.at),
      [0, 60_000, 120_000],
    );
    assert.deepEqual(
      greedy(2, 1, [1, 1, 1]).map((s) => s.at),
      [0, 30_000, 60_000],
    );
  });

  it("refuses a limit smaller than one request", () => {
    assert.throws(() => perMinuteBucket(255, 256, 0), RangeError);
    assert.throws(() => new TokenBucket(0, 1, 0), RangeError);
  });
});

describe("packRequests", () => {
  it("packs shortest first, up to the inputs and tokens a request may carry; an oversized input goes alone", () => {
    const tokens = [50, 10, 30, 10, 500, 20];
    assert.deepEqual(packRequests(tokens, 2), [
      [1, 3],
      [5, 2],
      [0, 4],
    ]);
    assert.deepEqual(packRequests(tokens, 10, 60), [[1, 3, 5], [2], [0], [4]]);
    assert.deepEqual(packRequests([], 4), []);
    assert.throws(() => packRequests([1], 0), RangeError);
  });
});

describe("RequestScheduler", () => {
  it("keeps to the concurrency, and serves queries, then retries, then new requests", async () => {
    const scheduler = new RequestScheduler({ concurrency: 1, rpm: 0, tpm: 0, largestInputTokens: 1 });
    const order: string[] = [];
    const first = await scheduler.acquire(1);
    const waiting = [
      scheduler.acquire(1).then((release) => ({ name: "new", release })),
      scheduler.acquire(1, { retry: true }).then((release) => ({ name: "retry", release })),
      scheduler.acquire(1, { urgent: true }).then((release) => ({ name: "query", release })),
    ];
    assert.equal(scheduler.inFlight, 1);
    assert.equal(scheduler.waiting, 3);
    first();
    // One slot: each release lets exactly the next waiter in, so the order of entry is the serving order.
    await Promise.all(
      waiting.map(async (w) => {
        const { name, release } = await w;
        order.push(name);
        release();
      }),
    );
    assert.deepEqual(order, ["query", "retry", "new"]);
    assert.equal(scheduler.inFlight, 0);
  });

  it("holds every request until a pause ends, and drops a waiter whose caller gave up", async () => {
    const scheduler = new RequestScheduler({ concurrency: 4, rpm: 0, tpm: 0, largestInputTokens: 1 });
    scheduler.pauseUntil(Date.now() + 150);
    const started = Date.now();
    const giveUp = new AbortController();
    const abandoned = scheduler.acquire(1, { signal: giveUp.signal });
    const kept = scheduler.acquire(1);
    giveUp.abort(new Error("gave up"));
    await assert.rejects(abandoned, /gave up/);
    const release = await kept;
    assert.ok(Date.now() - started >= 140, "not before the pause ended");
    assert.equal(scheduler.waiting, 0);
    release();
    scheduler.close(new Error("closed"));
  });

  it("spaces requests by RPM after the burst", async () => {
    // 1,200 a minute: a burst of 20, then one every ~50 ms.
    const scheduler = new RequestScheduler({ concurrency: 100, rpm: 1200, tpm: 0, largestInputTokens: 1 });
    const started = Date.now();
    const releases = await Promise.all(Array.from({ length: 24 }, () => scheduler.acquire(1)));
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 150, `4 beyond the burst took ${elapsed} ms`);
    for (const release of releases) release();
    await sleep(0);
  });
});
