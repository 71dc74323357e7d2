import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { modelEvidence, readSentenceTransformers } from "../../src/embedder/model-files.js";
import { tempDir } from "../helpers/paths.js";

function writeJson(path: string, value: unknown): void {
  writeFileSync(path, JSON.stringify(value));
}

describe("model files", () => {
  it("reads sentence-transformers' prompts, pooling module and max_seq_length", () => {
    const dir = tempDir("st");
    writeJson(join(dir, "config_sentence_transformers.json"), {
      prompts: { query: "query: ", document: "passage: " },
      default_prompt_name: null,
    });
    writeJson(join(dir, "modules.json"), [
      { idx: 0, name: "0", path: "", type: "sentence_transformers.models.Transformer" },
      { idx: 1, name: "1", path: "pool", type: "sentence_transformers.models.Pooling" },
    ]);
    mkdirSync(join(dir, "pool"));
    writeJson(join(dir, "pool", "config.json"), {
      pooling_mode_cls_token: true,
      pooling_mode_mean_tokens: false,
    });
    writeJson(join(dir, "sentence_bert_config.json"), { max_seq_length: 512, do_lower_case: false });
    assert.deepEqual(readSentenceTransformers(dir), {
      prompts: { query: "query: ", passage: "passage: " },
      pooling: "cls",
      maxSeqLength: 512,
    });
  });

  it("has nothing to say about a directory without those files, or with broken ones", () => {
    const dir = tempDir("st-none");
    assert.equal(readSentenceTransformers(dir), undefined);
    writeFileSync(join(dir, "sentence_bert_config.json"), "{not json");
    mkdirSync(join(dir, "1_Pooling"));
    writeJson(join(dir, "1_Pooling", "config.json"), { pooling_mode_max_tokens: true });
    assert.equal(readSentenceTransformers(dir), undefined, "max pooling is not ours to apply");
  });

  it("takes names and shape from config.json and the tokenizer class from tokenizer_config.json", () => {
    const evidence = modelEvidence(
      "/srv/m",
      {
        _name_or_path: "",
        model_type: "xlm-roberta",
        hidden_size: 384,
        num_hidden_layers: 12,
        vocab_size: 250037,
      },
      { tokenizer_class: "XLMRobertaTokenizer" },
      null,
    );
    assert.equal(evidence.nameOrPath, undefined, "an empty _name_or_path is no name");
    assert.equal(evidence.modelType, "xlm-roberta");
    assert.equal(evidence.hiddenSize, 384);
    assert.equal(evidence.numHiddenLayers, 12);
    assert.equal(evidence.vocabSize, 250037);
    assert.equal(evidence.tokenizerClass, "XLMRobertaTokenizer");
    assert.equal(evidence.sentenceTransformers, undefined);
  });
});
