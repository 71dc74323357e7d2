import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { backoffMs } from "../../src/domain/backoff.js";
import { classifyFailure } from "../../src/pipeline/retry-policy.js";

describe("backoffMs", () => {
  it("full jitter draws from [0, step], the step doubling per attempt up to the cap", () => {
    assert.equal(
      backoffMs(2, 100, 1000, "full", () => 0),
      0,
    );
    assert.equal(
      backoffMs(2, 100, 1000, "full", () => 1),
      400,
    );
    assert.equal(
      backoffMs(5, 100, 1000, "full", () => 1),
      1000,
    );
  });

  it("equal jitter draws from [step/2, step]", () => {
    assert.equal(
      backoffMs(2, 100, 1000, "equal", () => 0),
      200,
    );
    assert.equal(
      backoffMs(2, 100, 1000, "equal", () => 0.5),
      300,
    );
    assert.equal(
      backoffMs(2, 100, 1000, "equal", () => 1),
      400,
    );
  });

  it("the queue's retries wait at least half the step", () => {
    for (let i = 0; i < 50; i++) {
      const { delayMs } = classifyFailure(new Error("store down"), 3, 100, 10_000);
      assert.ok(delayMs >= 400 && delayMs <= 800, `${delayMs} ms`);
    }
  });
});
