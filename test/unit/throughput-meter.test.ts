import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ThroughputMeter } from "../../src/observability/throughput-meter.js";

describe("ThroughputMeter", () => {
  it("measures a long reservation from when its work began, not from when it was stored", () => {
    let now = 100_000;
    const meter = new ThroughputMeter(30_000, () => now);
    // 500 chunks embedded over 10 s, stored at the end.
    meter.record(500, 120_000, now - 10_000);
    const rates = meter.rates();
    assert.equal(rates.chunksPerSecond, 50);
    assert.equal(rates.tokensPerSecond, 12_000);
    now += 10_000; // idle for 10 s more: the same work over 20 s
    assert.equal(meter.rates().chunksPerSecond, 25);
  });

  it("spans overlapping reservations from the earliest start", () => {
    let now = 0;
    const meter = new ThroughputMeter(30_000, () => now);
    now = 8_000;
    meter.record(200, 0, 0);
    now = 10_000;
    meter.record(200, 0, 2_000);
    assert.equal(meter.rates().chunksPerSecond, 40);
  });

  it("forgets completions older than the window and reports zero when idle", () => {
    let now = 0;
    const meter = new ThroughputMeter(30_000, () => now);
    meter.record(10, 100);
    now = 31_000;
    assert.deepEqual(meter.rates(), { chunksPerSecond: 0, tokensPerSecond: 0 });
  });

  it("never divides by less than a second", () => {
    const meter = new ThroughputMeter(30_000, () => 5_000);
    meter.record(7, 70);
    assert.equal(meter.rates().chunksPerSecond, 7);
  });
});
