import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  bindingFor,
  modelFingerprint,
  modelName,
  parseBinding,
  profileFingerprint,
  profileIdentity,
} from "../../src/domain/model-binding.js";
import type { ModelInfo } from "../../src/domain/types.js";

const MODEL: ModelInfo = {
  id: "/models/all-MiniLM-L6-v2",
  hubId: "sentence-transformers/all-MiniLM-L6-v2",
  profile: "minilm",
  dimension: 384,
  maxTokens: 256,
  pooling: "mean",
  normalize: true,
  prefixes: { passage: "", query: "" },
  dtype: "q8",
  weightsSha256: "a".repeat(64),
};

describe("model bindings", () => {
  it("the fingerprint is 12 hex, the same wherever the files sit or whatever the served name", () => {
    const fingerprint = modelFingerprint(MODEL);
    assert.match(fingerprint, /^[0-9a-f]{12}$/);
    assert.equal(modelFingerprint({ ...MODEL, id: "/elsewhere/copy", servedName: "minilm" }), fingerprint);
  });

  it("changes with anything that changes the vectors: weights, dtype, pooling, prefixes, max tokens, dimension", () => {
    const fingerprint = modelFingerprint(MODEL);
    const variants: ModelInfo[] = [
      { ...MODEL, weightsSha256: "b".repeat(64) },
      { ...MODEL, dtype: "fp32" },
      { ...MODEL, pooling: "cls" },
      { ...MODEL, prefixes: { passage: "passage: ", query: "" } },
      { ...MODEL, prefixes: { passage: "", query: "query: " } },
      { ...MODEL, maxTokens: 128 },
      { ...MODEL, dimension: 768 },
      { ...MODEL, normalize: false },
      { ...MODEL, hubId: "someone/fine-tune" },
    ];
    const fingerprints = variants.map(modelFingerprint);
    for (const [index, other] of fingerprints.entries())
      assert.notEqual(other, fingerprint, `variant ${index}`);
    assert.equal(new Set(fingerprints).size, variants.length);
  });

  it("names a model by its hub id, else its directory, else the remote engine's model", () => {
    assert.equal(modelName(MODEL), "sentence-transformers/all-MiniLM-L6-v2");
    const { hubId: _, ...local } = MODEL;
    assert.equal(modelName(local), "all-MiniLM-L6-v2");
    assert.equal(
      modelName({
        ...local,
        remote: { protocol: "tei", url: "http://tei", model: "BAAI/bge-m3", tokenCounter: "estimate" },
      }),
      "BAAI/bge-m3",
    );
  });

  it("reads back what it stored, and nothing that is not a binding", () => {
    const binding = bindingFor(MODEL, { now: new Date("2026-12-02T00:00:00Z") });
    assert.equal(binding.fingerprint, profileFingerprint(profileIdentity(MODEL)));
    assert.deepEqual(parseBinding(JSON.parse(JSON.stringify(binding))), binding);
    assert.equal(parseBinding(null), null);
    assert.equal(parseBinding({ model: "x" }), null);
  });
});
