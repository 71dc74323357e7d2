/**
 * Reads what a model's files say about it (ModelEvidence, see profiles.ts): config.json and
 * tokenizer_config.json as transformers.js parsed them, and, in a local directory, the files
 * sentence-transformers saves next to the model. Missing or malformed files are simply absent
 * evidence: a model loads without them.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ModelEvidence, SentenceTransformersSettings } from "./profiles.js";

function field(object: unknown, key: string): unknown {
  return typeof object === "object" && object !== null ? Reflect.get(object, key) : undefined;
}

function stringField(object: unknown, key: string): string | undefined {
  const value = field(object, key);
  return typeof value === "string" && value.length > 0 ? value : undefined;
}

function numberField(object: unknown, key: string): number | undefined {
  const value = field(object, key);
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch {
    return undefined;
  }
}

/**
 * sentence-transformers' settings in `directory`, or undefined when it has none: prompts from
 * config_sentence_transformers.json ("passage" or "document"), pooling from the Pooling module named in
 * modules.json (mean or CLS only; other modes are not ours to apply), max_seq_length from
 * sentence_bert_config.json.
 */
export function readSentenceTransformers(directory: string): SentenceTransformersSettings | undefined {
  const settings: SentenceTransformersSettings = {};
  const prompts = field(readJson(join(directory, "config_sentence_transformers.json")), "prompts");
  const query = stringField(prompts, "query");
  const passage = stringField(prompts, "passage") ?? stringField(prompts, "document");
  if (query !== undefined || passage !== undefined) settings.prompts = { query, passage };

  const modules = readJson(join(directory, "modules.json"));
  const poolingModule = Array.isArray(modules)
    ? modules.find((m) => stringField(m, "type")?.endsWith(".Pooling"))
    : undefined;
  const poolingPath = stringField(poolingModule, "path") ?? "1_Pooling";
  const pooling = readJson(join(directory, poolingPath, "config.json"));
  if (field(pooling, "pooling_mode_cls_token") === true) settings.pooling = "cls";
  else if (field(pooling, "pooling_mode_mean_tokens") === true) settings.pooling = "mean";

  const maxSeqLength = numberField(readJson(join(directory, "sentence_bert_config.json")), "max_seq_length");
  if (maxSeqLength !== undefined && Number.isInteger(maxSeqLength) && maxSeqLength >= 4) {
    settings.maxSeqLength = maxSeqLength;
  }
  return Object.keys(settings).length > 0 ? settings : undefined;
}

/**
 * @param config config.json as loaded
 * @param tokenizerConfig tokenizer_config.json as loaded
 * @param directory the local model directory (null for a hub model: its sentence-transformers files
 *   are not downloaded)
 */
export function modelEvidence(
  modelId: string,
  config: object,
  tokenizerConfig: unknown,
  directory: string | null,
): ModelEvidence {
  return {
    modelId,
    nameOrPath: stringField(config, "_name_or_path"),
    modelType: stringField(config, "model_type"),
    hiddenSize: numberField(config, "hidden_size"),
    numHiddenLayers: numberField(config, "num_hidden_layers"),
    vocabSize: numberField(config, "vocab_size"),
    tokenizerClass: stringField(tokenizerConfig, "tokenizer_class"),
    sentenceTransformers: directory === null ? undefined : readSentenceTransformers(directory),
  };
}
