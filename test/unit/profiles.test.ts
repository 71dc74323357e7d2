import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { resolveProfile } from "../../src/embedder/profiles.js";

describe("resolveProfile", () => {
  it("recognises all-MiniLM by hub id, case-insensitively, with sentence-transformers' 256 tokens", () => {
    for (const id of [
      "sentence-transformers/all-MiniLM-L6-v2",
      "Xenova/all-minilm-l12-v2",
      "all-MiniLM-L6-v2",
    ]) {
      assert.deepEqual(resolveProfile(id, undefined, {}), {
        name: "minilm",
        passagePrefix: "",
        queryPrefix: "",
        pooling: "mean",
        normalize: true,
        maxTokens: 256,
      });
    }
  });

  it("recognises a local directory by its basename or by config _name_or_path", () => {
    assert.equal(resolveProfile("/models/all-MiniLM-L6-v2/", undefined, {}).name, "minilm");
    assert.equal(
      resolveProfile("/models/test-random-minilm-l6", "sentence-transformers/all-MiniLM-L6-v2", {}).name,
      "minilm",
    );
  });

  it("gives e5 models their passage/query prefixes", () => {
    for (const id of [
      "intfloat/multilingual-e5-small",
      "intfloat/e5-base-v2",
      "Xenova/multilingual-e5-large",
    ]) {
      const profile = resolveProfile(id, undefined, {});
      assert.equal(profile.name, "e5", id);
      assert.equal(profile.passagePrefix, "passage: ");
      assert.equal(profile.queryPrefix, "query: ");
      assert.equal(profile.pooling, "mean");
      assert.equal(profile.maxTokens, 512);
    }
  });

  it("gives bge v1.5 English CLS pooling and a query instruction", () => {
    const profile = resolveProfile("BAAI/bge-small-en-v1.5", undefined, {});
    assert.equal(profile.name, "bge-en-v1.5");
    assert.equal(profile.pooling, "cls");
    assert.equal(profile.passagePrefix, "");
    assert.equal(profile.queryPrefix, "Represent this sentence for searching relevant passages: ");
  });

  it("falls back to the default for models it does not know", () => {
    for (const id of [
      "sentence-transformers/paraphrase-MiniLM-L6-v2",
      "intfloat/multilingual-e5-large-instruct",
      "BAAI/bge-m3",
      "/srv/models/custom",
    ]) {
      assert.deepEqual(
        resolveProfile(id, undefined, {}),
        {
          name: "default",
          passagePrefix: "",
          queryPrefix: "",
          pooling: "mean",
          normalize: true,
          maxTokens: 512,
        },
        id,
      );
    }
  });

  it("lets overrides win, including empty prefixes", () => {
    const profile = resolveProfile("intfloat/multilingual-e5-small", undefined, {
      passagePrefix: "",
      queryPrefix: "search: ",
      pooling: "cls",
      maxTokens: 128,
    });
    assert.deepEqual(profile, {
      name: "e5",
      passagePrefix: "",
      queryPrefix: "search: ",
      pooling: "cls",
      normalize: true,
      maxTokens: 128,
    });
  });

  it("rejects a maxTokens override that leaves no room for text", () => {
    assert.throws(() => resolveProfile("x", undefined, { maxTokens: 0 }), RangeError);
    assert.throws(() => resolveProfile("x", undefined, { maxTokens: 12.5 }), RangeError);
  });
});
