/**
 * Loads a model for the embedding process: checks the files, loads the tokenizer and config with
 * transformers.js, recognises the profile, starts the ONNX sessions (session-pool.ts) and proves the
 * model runs with one forward pass. What it returns is everything an embed needs.
 */
import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  AutoConfig,
  AutoModel,
  AutoTokenizer,
  env,
  type PreTrainedTokenizer,
} from "@huggingface/transformers";
import type { ModelInfo } from "../domain/types.js";
import { type SpecialTokenLayout, specialTokenLayout } from "./encoding.js";
import { modelEvidence } from "./model-files.js";
import {
  type ModelEvidence,
  type ModelProfile,
  type ProfileRecognition,
  recogniseProfile,
} from "./profiles.js";
import { SessionPool } from "./session-pool.js";
import { useModelLocation } from "./transformers-location.js";
import type { WorkerLoadOptions } from "./worker-protocol.js";

/** transformers.js file-name suffix per dtype (its DEFAULT_DTYPE_SUFFIX_MAPPING, which it does not export). */
const DTYPE_FILE_SUFFIX = {
  fp32: "",
  fp16: "_fp16",
  q8: "_quantized",
  int8: "_int8",
  uint8: "_uint8",
  q4: "_q4",
  bnb4: "_bnb4",
  q4f16: "_q4f16",
} as const;
type ModelDtype = keyof typeof DTYPE_FILE_SUFFIX;

function isModelDtype(value: string): value is ModelDtype {
  return Object.hasOwn(DTYPE_FILE_SUFFIX, value);
}

/** A loaded model: its tokenizer, its running sessions and the limits an embed follows. */
export interface LoadedModel {
  tokenizer: PreTrainedTokenizer;
  sessions: SessionPool;
  /** The recognised profile, its maxTokens lowered to what the model's positions allow. */
  profile: ModelProfile;
  layout: SpecialTokenLayout;
  padTokenId: number;
  dimension: number;
  options: WorkerLoadOptions;
  info: ModelInfo;
}

const onnxFile = (dtype: ModelDtype) => join("onnx", `model${DTYPE_FILE_SUFFIX[dtype]}.onnx`);

/** Names the first file a local model directory lacks, so the error says what to fix. */
function missingLocalFile(directory: string, dtype: ModelDtype): string | undefined {
  const required = ["config.json", "tokenizer.json", "tokenizer_config.json", onnxFile(dtype)];
  return required.find((file) => !existsSync(join(directory, file)));
}

/** Reads a numeric config field; the typings declare only a few fields of config.json. */
function configNumber(config: object, key: string): number | undefined {
  const value: unknown = Reflect.get(config, key);
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

/**
 * The .onnx file of a hub model: transformers.js downloads it into its file cache
 * (`cacheDir/<id>/onnx/...`) when it loads the model once; the runners then open that file.
 */
async function hubModelFile(id: string, dtype: ModelDtype, cacheDir: string): Promise<string> {
  const model = await AutoModel.from_pretrained(id, { dtype });
  await model.dispose();
  const file = join(cacheDir, id, onnxFile(dtype));
  if (!existsSync(file)) throw new Error(`the model file was not cached at ${file}`);
  return file;
}

/** Loads the model `options` name; errors name the model, the dtype and what to fix. */
export async function loadModel(options: WorkerLoadOptions): Promise<LoadedModel> {
  const { source, dtype } = options;
  const displayId = source.kind === "local" ? resolve(source.directory) : source.id;
  if (!isModelDtype(dtype)) {
    throw new Error(
      `model ${displayId}: unsupported dtype "${dtype}" (expected one of ${Object.keys(DTYPE_FILE_SUFFIX).join(", ")})`,
    );
  }

  if (source.kind === "local") {
    const missing = missingLocalFile(displayId, dtype);
    if (missing !== undefined) {
      throw new Error(`model directory ${displayId} is missing ${missing} (needed for dtype ${dtype})`);
    }
  }
  const name = useModelLocation(
    env,
    source.kind === "local" ? { kind: "local", directory: displayId } : source,
  );

  let tokenizer: PreTrainedTokenizer;
  let config: object;
  let modelPath: string;
  try {
    tokenizer = await AutoTokenizer.from_pretrained(name);
    config = await AutoConfig.from_pretrained(name);
    modelPath =
      source.kind === "local"
        ? join(displayId, onnxFile(dtype))
        : await hubModelFile(source.id, dtype, source.cacheDir);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    // Without the hub, a hub id cannot load: say how to point at a local directory instead.
    const hint =
      source.kind === "hub"
        ? " — is the Hugging Face hub reachable? Air-gapped, set EMBEDDING_MODEL to a local model directory (config.json, tokenizer.json, onnx/model_quantized.onnx)"
        : "";
    throw new Error(`could not load model ${displayId} (dtype ${dtype}): ${reason}${hint}`);
  }

  // Recognised from the model's files, so a renamed copy keeps its profile.
  const directory = source.kind === "local" ? displayId : null;
  const evidence = modelEvidence(displayId, config, tokenizer.config, directory);
  const { profile, recognition } = recogniseProfile(evidence, options.profileOverrides);
  let sessions: SessionPool;
  try {
    sessions = await SessionPool.start(options.sessions, {
      modelPath,
      threads: Math.max(1, Math.floor(options.threads / options.sessions)),
      pooling: profile.pooling,
      normalize: profile.normalize,
    });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`could not load model ${displayId} (dtype ${dtype}): ${reason}`);
  }

  try {
    const loaded = await prepare(
      options,
      displayId,
      dtype,
      tokenizer,
      config,
      { profile, recognition, evidence },
      sessions,
    );
    // The weights' identity goes into every collection binding: two copies of a model under the same
    // name (a fine-tune, random test weights) must not write into each other's collections.
    loaded.info.weightsSha256 = await sha256File(modelPath);
    return loaded;
  } catch (error) {
    // Release the ORT sessions of a model we will not use.
    await sessions.close();
    throw error;
  }
}

/** Streamed: a model file is tens to hundreds of megabytes; hashing it costs well under a second. */
function sha256File(path: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const hash = createHash("sha256");
    createReadStream(path)
      .on("data", (chunk) => hash.update(chunk))
      .on("error", reject)
      .on("end", () => resolvePromise(hash.digest("hex")));
  });
}

/** Resolves the limits, then proves the model runs. */
async function prepare(
  options: WorkerLoadOptions,
  displayId: string,
  dtype: ModelDtype,
  tokenizer: PreTrainedTokenizer,
  config: object,
  recognised: { profile: ModelProfile; recognition: ProfileRecognition; evidence: ModelEvidence },
  sessions: SessionPool,
): Promise<LoadedModel> {
  const { profile, recognition, evidence } = recognised;
  // Never feed more positions than the model has: a larger maxTokens override would crash ORT on every
  // long text. XLM-R style models reserve 2 positions (514 → 512), which model_max_length reflects.
  const limits = [profile.maxTokens, configNumber(config, "max_position_embeddings")];
  const tokenizerMax: unknown = tokenizer.model_max_length;
  if (typeof tokenizerMax === "number" && tokenizerMax < 1e6) limits.push(tokenizerMax);
  const maxTokens = Math.min(...limits.filter((n): n is number => n !== undefined));

  const layout = specialTokenLayout(
    tokenizer.encode("hello world"),
    tokenizer.encode("hello world", { add_special_tokens: false }),
  );
  const padTokenId = typeof tokenizer.pad_token_id === "number" ? tokenizer.pad_token_id : 0;

  // One real forward pass: learns the output width (configs name it differently across architectures),
  // proves the graph runs before we report ready, and warms ORT up.
  const probe = await sessions.runRows([tokenizer.encode("warm up")], padTokenId);
  const dimension = probe.length;
  const hiddenSize = configNumber(config, "hidden_size");
  if (hiddenSize !== undefined && hiddenSize !== dimension) {
    throw new Error(
      `model ${displayId}: output width ${dimension} differs from config hidden_size ${hiddenSize}`,
    );
  }

  return {
    tokenizer,
    sessions,
    profile: { ...profile, maxTokens },
    layout,
    padTokenId,
    dimension,
    options,
    info: {
      id: displayId,
      // What OpenAI-style clients call the model; a local export names its origin in config.json.
      hubId: options.source.kind === "hub" ? options.source.id : evidence.nameOrPath,
      profile: profile.name,
      profileSource: recognition,
      dimension,
      maxTokens,
      pooling: profile.pooling,
      normalize: profile.normalize,
      prefixes: { passage: profile.passagePrefix, query: profile.queryPrefix },
      dtype,
    },
  };
}
