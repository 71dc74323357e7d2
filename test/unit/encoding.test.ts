import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildBatchInputs, specialTokenLayout, truncateIds } from "../../src/embedder/encoding.js";

describe("specialTokenLayout", () => {
  it("finds the special tokens around a sequence", () => {
    assert.deepEqual(specialTokenLayout([101, 7592, 2088, 102], [7592, 2088]), {
      prefixLength: 1,
      suffixLength: 1,
    });
    assert.deepEqual(specialTokenLayout([0, 5, 6, 2, 2], [5, 6]), { prefixLength: 1, suffixLength: 2 });
    assert.deepEqual(specialTokenLayout([5, 6], [5, 6]), { prefixLength: 0, suffixLength: 0 });
  });

  it("falls back to no special tokens when the content is not found", () => {
    assert.deepEqual(specialTokenLayout([1, 2, 3], [9]), { prefixLength: 0, suffixLength: 0 });
  });
});

describe("truncateIds", () => {
  const bert = { prefixLength: 1, suffixLength: 1 };

  it("keeps the closing special token, as Python tokenizers do", () => {
    assert.deepEqual(truncateIds([101, 1, 2, 3, 4, 5, 102], 4, bert), [101, 1, 2, 102]);
  });

  it("leaves sequences that fit alone", () => {
    assert.deepEqual(truncateIds([101, 1, 102], 3, bert), [101, 1, 102]);
  });

  it("cuts plainly without a known suffix", () => {
    assert.deepEqual(truncateIds([1, 2, 3, 4], 2, { prefixLength: 0, suffixLength: 0 }), [1, 2]);
  });
});

describe("buildBatchInputs", () => {
  it("right-pads ids with the pad id and masks the padding", () => {
    const { inputIds, attentionMask, seqLength } = buildBatchInputs(
      [
        [101, 7, 102],
        [101, 102],
      ],
      0,
    );
    assert.equal(seqLength, 3);
    assert.deepEqual([...inputIds], [101n, 7n, 102n, 101n, 102n, 0n]);
    assert.deepEqual([...attentionMask], [1n, 1n, 1n, 1n, 1n, 0n]);
  });
});
