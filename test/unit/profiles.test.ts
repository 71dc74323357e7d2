import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { recogniseProfile, resolveProfile } from "../../src/embedder/profiles.js";

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

/** config.json and tokenizer class of the e5 directory in ../shared/models, without its name. */
const E5_SMALL_SHAPE = {
  modelType: "xlm-roberta",
  hiddenSize: 384,
  numHiddenLayers: 12,
  vocabSize: 250_037,
  tokenizerClass: "XLMRobertaTokenizer",
};

describe("recogniseProfile", () => {
  it("recognises multilingual-e5-small by its shape when no name says what it is", () => {
    const { profile, recognition } = recogniseProfile(
      { modelId: "/srv/models/korean", ...E5_SMALL_SHAPE },
      {},
    );
    assert.equal(profile.name, "e5");
    assert.equal(profile.passagePrefix, "passage: ");
    assert.equal(profile.queryPrefix, "query: ");
    assert.equal(profile.maxTokens, 512);
    assert.equal(recognition.by, "architecture");
    assert.match(recognition.detail, /multilingual-e5-small/);
    // The published e5-small says "bert" with the XLM-R tokenizer: the same shape.
    const published = { ...E5_SMALL_SHAPE, modelType: "bert", vocabSize: undefined };
    assert.equal(recogniseProfile({ modelId: "/srv/m", ...published }, {}).profile.name, "e5");
  });

  it("lets a name win over the shape: paraphrase-multilingual-MiniLM has e5-small's shape but no prefixes", () => {
    const { profile, recognition } = recogniseProfile(
      {
        modelId: "/srv/models/renamed",
        nameOrPath: "old_models/paraphrase-multilingual-MiniLM-L12-v2",
        ...E5_SMALL_SHAPE,
      },
      {},
    );
    assert.equal(profile.name, "paraphrase-multilingual-minilm");
    assert.equal(profile.passagePrefix, "");
    assert.equal(profile.maxTokens, 128);
    assert.deepEqual(recognition, {
      by: "name",
      detail: 'config.json _name_or_path "old_models/paraphrase-multilingual-MiniLM-L12-v2"',
    });
  });

  it("recognises all-MiniLM-L6's shape, and leaves shapes that several models share to the default", () => {
    const l6 = { modelId: "/m", hiddenSize: 384, numHiddenLayers: 6, vocabSize: 30_522, modelType: "bert" };
    assert.equal(recogniseProfile(l6, {}).profile.maxTokens, 256);
    // all-MiniLM-L12 (mean) and bge-small-en-v1.5 (CLS) share this shape: no guess.
    const l12 = { ...l6, numHiddenLayers: 12 };
    const { profile, recognition } = recogniseProfile(l12, {});
    assert.equal(profile.name, "default");
    assert.equal(recognition.by, "default");
  });

  it("takes prompts, pooling and max_seq_length from sentence-transformers' settings, ignoring empty prompts", () => {
    const withPrompts = recogniseProfile(
      {
        modelId: "/srv/m",
        sentenceTransformers: {
          prompts: { query: "query: ", passage: "passage: " },
          pooling: "mean",
          maxSeqLength: 512,
        },
      },
      {},
    );
    assert.equal(withPrompts.profile.passagePrefix, "passage: ");
    assert.equal(withPrompts.profile.queryPrefix, "query: ");
    assert.match(withPrompts.recognition.detail, /sentence-transformers prompts, pooling, max_seq_length/);
    const cls = recogniseProfile(
      { modelId: "/srv/m", sentenceTransformers: { pooling: "cls", maxSeqLength: 8192 } },
      {},
    );
    assert.equal(cls.profile.pooling, "cls");
    assert.equal(cls.profile.maxTokens, 8192);
    // An e5 model whose sentence-transformers config lists no prompts keeps e5's prefixes.
    const e5 = recogniseProfile(
      {
        modelId: "intfloat/multilingual-e5-small",
        sentenceTransformers: { prompts: { query: "", passage: "" } },
      },
      {},
    );
    assert.equal(e5.profile.queryPrefix, "query: ");
    // Settings still win over everything the files say.
    const overridden = recogniseProfile(
      { modelId: "/srv/m", ...E5_SMALL_SHAPE, sentenceTransformers: { prompts: { query: "q: " } } },
      { queryPrefix: "search: " },
    );
    assert.equal(overridden.profile.queryPrefix, "search: ");
  });
});
