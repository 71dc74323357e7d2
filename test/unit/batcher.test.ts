import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { planBatches } from "../../src/embedder/batcher.js";

function paddedCost(batch: number[], lengths: number[]): number {
  return batch.length * Math.max(...batch.map((i) => lengths[i] ?? 0));
}

describe("planBatches", () => {
  it("returns no batches for no input", () => {
    assert.deepEqual(planBatches([], { maxBatchTokens: 100, maxBatchSize: 4 }), []);
  });

  it("uses every index exactly once, shortest first", () => {
    const lengths = [50, 3, 200, 7, 7, 120, 1, 64, 64, 9];
    const batches = planBatches(lengths, { maxBatchTokens: 256, maxBatchSize: 3 });
    const flat = batches.flat();
    assert.deepEqual(
      [...flat].sort((a, b) => a - b),
      lengths.map((_, i) => i),
    );
    const flatLengths = flat.map((i) => lengths[i] ?? 0);
    assert.deepEqual(
      flatLengths,
      [...flatLengths].sort((a, b) => a - b),
    );
  });

  it("keeps the padded cost and the batch size within budget", () => {
    const lengths = Array.from({ length: 200 }, (_, i) => ((i * 7919) % 300) + 1);
    const options = { maxBatchTokens: 1024, maxBatchSize: 8 };
    for (const batch of planBatches(lengths, options)) {
      assert.ok(batch.length <= options.maxBatchSize);
      assert.ok(paddedCost(batch, lengths) <= options.maxBatchTokens, `batch ${batch} over budget`);
    }
  });

  it("fills batches greedily", () => {
    // 4 × 10 = 40 fits, a fifth would cost 50.
    assert.deepEqual(planBatches([10, 10, 10, 10, 10, 10], { maxBatchTokens: 40, maxBatchSize: 16 }), [
      [0, 1, 2, 3],
      [4, 5],
    ]);
    assert.deepEqual(planBatches([1, 1, 1, 1, 1], { maxBatchTokens: 1000, maxBatchSize: 2 }), [
      [0, 1],
      [2, 3],
      [4],
    ]);
  });

  it("cuts when a longer item would make the padded batch too expensive", () => {
    // [2, 3] costs 2 × 3 = 6; adding 5 would cost 15.
    assert.deepEqual(planBatches([5, 2, 3], { maxBatchTokens: 10, maxBatchSize: 16 }), [[1, 2], [0]]);
  });

  it("puts an item larger than the budget in a batch of its own", () => {
    assert.deepEqual(planBatches([4, 900, 4, 800], { maxBatchTokens: 100, maxBatchSize: 16 }), [
      [0, 2],
      [3],
      [1],
    ]);
  });

  it("is stable for equal lengths", () => {
    assert.deepEqual(planBatches([5, 5, 5, 5], { maxBatchTokens: 100, maxBatchSize: 16 }), [[0, 1, 2, 3]]);
  });

  it("rejects nonsensical options", () => {
    assert.throws(() => planBatches([1], { maxBatchTokens: 0, maxBatchSize: 1 }), RangeError);
    assert.throws(() => planBatches([1], { maxBatchTokens: 10, maxBatchSize: 0 }), RangeError);
    assert.throws(() => planBatches([1], { maxBatchTokens: 10, maxBatchSize: 1.5 }), RangeError);
  });
});
