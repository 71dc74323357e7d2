import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkpointPathFor } from "../../src/cli/ingest-checkpoint.js";
import { bar, etaSeconds, formatProgress, StoredRate } from "../../src/cli/ingest-progress.js";

const view = {
  accepted: 0,
  stored: 0,
  dead: 0,
  sent: 0,
  total: undefined,
  chunksPerSecond: 0,
  tokensPerSecond: 0,
  etaSeconds: undefined,
};

describe("ingest progress line", () => {
  it("shows stored out of accepted, then sent, rates and ETA; never NaN or Infinity", () => {
    assert.equal(formatProgress(view), "0/0 stored (0%) | sent 0/? | 0 chunks/s, 0 tok/s | ETA ?");
    assert.equal(
      formatProgress({
        ...view,
        accepted: 5183,
        stored: 1200,
        dead: 3,
        sent: 5183,
        total: 5183,
        chunksPerSecond: 48.25,
        tokensPerSecond: 11_600.4,
        etaSeconds: 82,
      }),
      "1,200/5,183 stored (23%) | 3 dead | sent 5,183/5,183 | 48.3 chunks/s, 11,600 tok/s | ETA 1m22s",
    );
    assert.equal(bar(0, 0), "░".repeat(24));
    assert.equal(bar(50, 100), `${"█".repeat(12)}${"░".repeat(12)}`);
    assert.equal(bar(100, 100), "█".repeat(24));
  });

  it("ETA: nothing left is 0, no rate yet is unknown", () => {
    assert.equal(etaSeconds(0, undefined), 0);
    assert.equal(etaSeconds(100, undefined), undefined);
    assert.equal(etaSeconds(100, 0), undefined);
    assert.equal(etaSeconds(100, Number.NaN), undefined);
    assert.equal(etaSeconds(100, 20), 5);
  });

  it("the stored rate is measured over a window, once two points are a second apart", () => {
    let now = 0;
    const rate = new StoredRate(10_000, () => now);
    rate.add(0);
    assert.equal(rate.perSecond(), undefined);
    now = 2_000;
    rate.add(40);
    assert.equal(rate.perSecond(), 20);
    now = 30_000;
    rate.add(40);
    now = 32_000;
    rate.add(60);
    assert.equal(rate.perSecond(), 10, "old points fall out of the window");
  });

  it("the default checkpoint is in the working directory, one per input and collection", () => {
    const a = checkpointPathFor("/data/shared/corpus.jsonl", "docs", "/home/me");
    assert.match(a, /^\/home\/me\/corpus\.jsonl\.[0-9a-f]{8}\.rag-embed-progress\.json$/);
    assert.notEqual(a, checkpointPathFor("/data/shared/corpus.jsonl", "other", "/home/me"));
    assert.notEqual(a, checkpointPathFor("/data/mine/corpus.jsonl", "docs", "/home/me"));
  });
});
