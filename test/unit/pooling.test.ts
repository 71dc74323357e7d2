import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { normalizeRows, pool } from "../../src/embedder/pooling.js";

// batch 2, seq 3, dim 2. Row 0 has one padding position, row 1 none.
const hidden = Float32Array.from([1, 2, 3, 4, 100, 100, 5, 6, 7, 8, 9, 10]);
const dims = [2, 3, 2];

describe("pool", () => {
  it("mean-pools over the attention mask only, so padding never moves a vector", () => {
    const out = pool(hidden, dims, [1, 1, 0, 1, 1, 1], "mean");
    assert.deepEqual([...out], [2, 3, 7, 8]);
  });

  it("accepts int64 masks as bigints", () => {
    const out = pool(hidden, dims, BigInt64Array.from([1n, 1n, 0n, 1n, 1n, 1n]), "mean");
    assert.deepEqual([...out], [2, 3, 7, 8]);
  });

  it("takes the first position for cls pooling", () => {
    const out = pool(hidden, dims, [1, 1, 0, 1, 1, 1], "cls");
    assert.deepEqual([...out], [1, 2, 5, 6]);
  });

  it("gives zeros, not NaN, for an all-padding row", () => {
    const out = pool(hidden, dims, [0, 0, 0, 1, 1, 1], "mean");
    assert.deepEqual([...out.subarray(0, 2)], [0, 0]);
  });

  it("rejects shapes that do not match the data", () => {
    assert.throws(() => pool(hidden, [2, 3, 3], [1, 1, 1, 1, 1, 1], "mean"), /hidden state/);
    assert.throws(() => pool(hidden, [2, 6], [1, 1, 1, 1, 1, 1], "mean"), /batch, seq, dim/);
    assert.throws(() => pool(hidden, dims, [1, 1, 1], "mean"), /attention mask/);
  });
});

describe("normalizeRows", () => {
  it("scales every row to unit length in place", () => {
    const matrix = Float32Array.from([3, 4, 0, 0, 5, 12]);
    normalizeRows(matrix, 2);
    assert.deepEqual([...matrix.subarray(0, 2)], [0.6000000238418579, 0.800000011920929]);
    assert.deepEqual([...matrix.subarray(2, 4)], [0, 0]);
    const [x = 0, y = 0] = matrix.subarray(4, 6);
    assert.ok(Math.abs(Math.hypot(x, y) - 1) < 1e-6);
  });

  it("rejects a matrix that is not whole rows", () => {
    assert.throws(() => normalizeRows(new Float32Array(5), 2), /rows/);
  });
});
