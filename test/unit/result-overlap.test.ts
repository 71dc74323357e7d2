import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { meanOverlap, overlapVerdict, topKOverlap } from "../../src/domain/result-overlap.js";

const ids = (prefix: string, n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => `${prefix}${from + i}`);

describe("topKOverlap", () => {
  it("is the share of the top k both answers hold, whatever their order", () => {
    assert.equal(topKOverlap(ids("c", 10), ids("c", 10).reverse(), 10), 1);
    assert.equal(topKOverlap(ids("c", 10), ids("c", 10, 4), 10), 0.6);
    assert.equal(topKOverlap(ids("c", 10), ids("d", 10), 10), 0);
  });

  it("looks at the first k ids only", () => {
    // Past k they agree completely; within k only 2 of 5 are shared.
    const a = [...ids("x", 3), "s1", "s2", ...ids("t", 10)];
    const b = [...ids("y", 3), "s2", "s1", ...ids("t", 10)];
    assert.equal(topKOverlap(a, b, 5), 0.4);
  });

  it("counts a chunk answered twice (two windows) once, against k", () => {
    assert.equal(topKOverlap(["a", "a", "b", "c"], ["a", "b", "c", "d"], 4), 3 / 4);
  });

  it("does not count a collection smaller than k as disagreement; two empty answers agree", () => {
    assert.equal(topKOverlap(ids("c", 3), ids("c", 3), 10), 1);
    assert.equal(topKOverlap(ids("c", 3), ids("c", 2), 10), 2 / 3);
    assert.equal(topKOverlap([], ids("c", 2), 10), 0);
    assert.equal(topKOverlap([], [], 10), 1);
  });

  it("refuses a k that is not a positive integer", () => {
    for (const k of [0, -1, 1.5, Number.NaN]) assert.throws(() => topKOverlap(["a"], ["a"], k), RangeError);
  });
});

describe("meanOverlap and overlapVerdict", () => {
  it("averages the per-query overlaps and refuses none", () => {
    assert.equal(meanOverlap([1, 0.5, 0]), 0.5);
    assert.throws(() => meanOverlap([]), RangeError);
  });

  it("passes at the threshold exactly, even when float sums land a hair below it", () => {
    // 0.7 + 0.5 = 1.2, / 2 = 0.6 in exact arithmetic; (0.1 * 3 + 0.3) / 2 is 0.3 in floats only nearly.
    const overlaps = [0.7, 0.5];
    assert.deepEqual(overlapVerdict(overlaps, 0.6), { mean: meanOverlap(overlaps), passed: true });
    const nearly = [0.1 + 0.1 + 0.1, 0.3];
    assert.notEqual(meanOverlap(nearly), 0.3);
    assert.equal(overlapVerdict(nearly, 0.3).passed, true);
    assert.equal(overlapVerdict([0.5, 0.6], 0.6).passed, false);
    assert.equal(overlapVerdict([0, 0], 0).passed, true, "min_overlap 0 always passes");
  });
});
