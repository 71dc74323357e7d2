import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { StatusHistory, type StatusSample } from "../../src/observability/status-history.js";

const sample = (t: number): StatusSample => ({
  t,
  pendingChunks: t,
  runningChunks: 0,
  pendingTokens: 0,
  chunksPerSecond: 0,
  tokensPerSecond: 0,
});

describe("StatusHistory", () => {
  it("keeps the newest `capacity` samples, oldest first", () => {
    const history = new StatusHistory(async () => sample(0), { capacity: 3 });
    assert.deepEqual(history.samples(), []);
    for (let t = 1; t <= 7; t++) history.add(sample(t));
    assert.deepEqual(
      history.samples().map((s) => s.t),
      [5, 6, 7],
    );
  });

  it("samples the source at the clock's time; a failed read leaves a gap", async () => {
    let now = 1_000;
    let fail = false;
    const history = new StatusHistory(
      async () => {
        if (fail) throw new Error("queue unreachable");
        return { ...sample(0), pendingChunks: 42 };
      },
      { now: () => now },
    );
    await history.sample();
    now = 2_000;
    fail = true;
    await history.sample();
    assert.deepEqual(
      history.samples().map((s) => [s.t, s.pendingChunks]),
      [[1_000, 42]],
    );
  });
});
