/**
 * The embedding worker: the only module that touches transformers.js / ONNX Runtime, so model inference
 * never blocks the HTTP event loop. Speaks the protocol in worker-protocol.ts.
 */
import { existsSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { parentPort } from "node:worker_threads";
import {
  AutoModel,
  AutoTokenizer,
  env,
  type PreTrainedModel,
  type PreTrainedTokenizer,
  Tensor,
} from "@huggingface/transformers";
import type { EmbedKind, ModelInfo } from "../domain/types.js";
import { planBatches } from "./batcher.js";
import { buildBatchInputs, type SpecialTokenLayout, specialTokenLayout, truncateIds } from "./encoding.js";
import { normalizeRows, pool } from "./pooling.js";
import { type ModelProfile, resolveProfile } from "./profiles.js";
import { splitIntoWindows } from "./windows.js";
import type { WireWindow, WorkerLoadOptions, WorkerRequest, WorkerResponse } from "./worker-protocol.js";

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

interface LoadedModel {
  tokenizer: PreTrainedTokenizer;
  model: PreTrainedModel;
  profile: ModelProfile;
  layout: SpecialTokenLayout;
  padTokenId: number;
  dimension: number;
  options: WorkerLoadOptions;
  info: ModelInfo;
}

let loaded: LoadedModel | undefined;

/** Names the first file a local model directory lacks, so the error says what to fix. */
function missingLocalFile(directory: string, dtype: ModelDtype): string | undefined {
  const required = [
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    join("onnx", `model${DTYPE_FILE_SUFFIX[dtype]}.onnx`),
  ];
  return required.find((file) => !existsSync(join(directory, file)));
}

/** Reads a numeric config field; the typings declare only a few fields of config.json. */
function configNumber(config: object, key: string): number | undefined {
  const value: unknown = Reflect.get(config, key);
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

function configString(config: object, key: string): string | undefined {
  const value: unknown = Reflect.get(config, key);
  return typeof value === "string" && value.length > 0 ? value : undefined;
}

async function load(options: WorkerLoadOptions): Promise<ModelInfo> {
  const { source, dtype, threads } = options;
  const displayId = source.kind === "local" ? resolve(source.directory) : source.id;
  if (!isModelDtype(dtype)) {
    throw new Error(
      `model ${displayId}: unsupported dtype "${dtype}" (expected one of ${Object.keys(DTYPE_FILE_SUFFIX).join(", ")})`,
    );
  }

  let name: string;
  if (source.kind === "local") {
    const missing = missingLocalFile(displayId, dtype);
    if (missing !== undefined) {
      throw new Error(`model directory ${displayId} is missing ${missing} (needed for dtype ${dtype})`);
    }
    // transformers.js strips a leading slash from ids, so an absolute path cannot be the id: point the
    // local root at the parent and load by directory name.
    env.allowLocalModels = true;
    env.allowRemoteModels = false;
    env.localModelPath = dirname(displayId);
    name = basename(displayId);
  } else {
    // Local lookups off, so a hub id is never resolved against the default local root by accident.
    env.allowLocalModels = false;
    env.allowRemoteModels = true;
    env.cacheDir = source.cacheDir;
    name = source.id;
  }

  let tokenizer: PreTrainedTokenizer;
  let model: PreTrainedModel;
  try {
    tokenizer = await AutoTokenizer.from_pretrained(name);
    model = await AutoModel.from_pretrained(name, {
      dtype,
      session_options: { intraOpNumThreads: threads, interOpNumThreads: 1 },
    });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    // Without the hub, a hub id cannot load: say how to point at a local directory instead.
    const hint =
      source.kind === "hub"
        ? " — is the Hugging Face hub reachable? Air-gapped, set EMBEDDING_MODEL to a local model directory (config.json, tokenizer.json, onnx/model_quantized.onnx)"
        : "";
    throw new Error(`could not load model ${displayId} (dtype ${dtype}): ${reason}${hint}`);
  }

  try {
    const state = await prepare(options, displayId, dtype, tokenizer, model);
    if (loaded) await loaded.model.dispose();
    loaded = state;
    return state.info;
  } catch (error) {
    // Release the ORT session of a model we will not use.
    await model.dispose();
    throw error;
  }
}

/** Resolves the profile and limits, then proves the model runs. */
async function prepare(
  options: WorkerLoadOptions,
  displayId: string,
  dtype: ModelDtype,
  tokenizer: PreTrainedTokenizer,
  model: PreTrainedModel,
): Promise<LoadedModel> {
  const config: object = model.config;
  const profile = resolveProfile(displayId, configString(config, "_name_or_path"), options.profileOverrides);

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

  const state: LoadedModel = {
    tokenizer,
    model,
    profile: { ...profile, maxTokens },
    layout,
    padTokenId,
    dimension: 0,
    options,
    info: {
      id: displayId,
      profile: profile.name,
      dimension: 0,
      maxTokens,
      pooling: profile.pooling,
      normalize: profile.normalize,
      prefixes: { passage: profile.passagePrefix, query: profile.queryPrefix },
      dtype,
    },
  };

  // One real forward pass: learns the output width (configs name it differently across architectures),
  // proves the graph runs before we report ready, and warms ORT up.
  const probe = await runBatch(state, [tokenizer.encode("warm up")]);
  const dimension = probe.length;
  const hiddenSize = configNumber(config, "hidden_size");
  if (hiddenSize !== undefined && hiddenSize !== dimension) {
    throw new Error(
      `model ${displayId}: output width ${dimension} differs from config hidden_size ${hiddenSize}`,
    );
  }
  state.dimension = dimension;
  state.info.dimension = dimension;

  return state;
}

function hiddenStateOf(output: unknown): Tensor {
  if (typeof output === "object" && output !== null) {
    for (const key of ["last_hidden_state", "token_embeddings"]) {
      const value: unknown = Reflect.get(output, key);
      if (value instanceof Tensor) return value;
    }
  }
  throw new Error("model output has no last_hidden_state: is this an encoder (feature-extraction) model?");
}

function disposeAll(output: unknown): void {
  if (typeof output !== "object" || output === null) return;
  for (const value of Object.values(output)) {
    if (value instanceof Tensor) value.dispose();
  }
}

/** Runs one padded batch and returns its pooled (and, per profile, normalised) rows, batch × dim. */
async function runBatch(state: LoadedModel, rows: number[][]): Promise<Float32Array> {
  const { inputIds, attentionMask, seqLength } = buildBatchInputs(rows, state.padTokenId);
  const dims = [rows.length, seqLength];
  const feeds = {
    input_ids: new Tensor("int64", inputIds, dims),
    attention_mask: new Tensor("int64", attentionMask, dims),
    // Single sequences: segment 0 everywhere. Models without this input ignore it.
    token_type_ids: new Tensor("int64", new BigInt64Array(inputIds.length), dims),
  };
  let output: unknown;
  try {
    output = await state.model(feeds);
    const hidden = hiddenStateOf(output);
    // fp16 graphs return float16; pooling works in float32.
    const asFloat32 = hidden.type === "float32" ? hidden : hidden.to("float32");
    try {
      const data = asFloat32.data;
      if (!(data instanceof Float32Array)) throw new Error(`unexpected hidden state type ${asFloat32.type}`);
      const pooled = pool(data, asFloat32.dims, attentionMask, state.profile.pooling);
      if (state.profile.normalize) {
        const dim = asFloat32.dims[2] ?? 0;
        normalizeRows(pooled, dim);
      }
      return pooled;
    } finally {
      if (asFloat32 !== hidden) asFloat32.dispose();
    }
  } finally {
    // ORT output buffers are native-backed; release them now rather than at GC so memory stays flat.
    disposeAll(output);
    for (const tensor of Object.values(feeds)) tensor.dispose();
  }
}

/** A window of a split text with its model input (prefix and special tokens included). */
interface TextWindow {
  text: string;
  ids: number[];
}

/**
 * Cuts a text over the model's limit into overlapping windows that are substrings of it and each fit
 * (prefix and special tokens included). Returns null when it cannot produce two windows (the caller
 * then truncates).
 */
function splitText(
  state: LoadedModel,
  text: string,
  prefix: string,
  overlapTokens: number,
): TextWindow[] | null {
  const { tokenizer, profile, layout } = state;
  const { maxTokens } = profile;
  // The splitter measures each window whole; keep those ids so no window is tokenized twice.
  const encoded = new Map<string, number[]>();
  const encodeWindow = (windowText: string): number[] => {
    let ids = encoded.get(windowText);
    if (!ids) {
      ids = tokenizer.encode(prefix + windowText);
      encoded.set(windowText, ids);
    }
    return ids;
  };
  const prefixTokens = prefix.length > 0 ? tokenizer.encode(prefix, { add_special_tokens: false }).length : 0;
  const windows = splitIntoWindows(
    text,
    {
      piece: (piece) => tokenizer.encode(piece, { add_special_tokens: false }).length,
      window: (windowText) => encodeWindow(windowText).length,
    },
    { maxTokens, fixedTokens: layout.prefixLength + layout.suffixLength + prefixTokens, overlapTokens },
  );
  if (windows.length < 2) return null;
  return windows.map((w) => ({ text: w.text, ids: truncateIds(encodeWindow(w.text), maxTokens, layout) }));
}

/** An embed request, tokenized and planned, run one model batch at a time. */
interface EmbedJob {
  id: number;
  /** Model input per row: row i is text i (a split text's first window), then further windows. */
  rows: number[][];
  batches: number[][];
  nextBatch: number;
  dimension: number;
  vectors: Float32Array;
  tokens: number[];
  truncatedTokens: number[];
  windows: Array<WireWindow[] | null>;
}

function prepareEmbed(request: Extract<WorkerRequest, { type: "embed" }>): EmbedJob {
  const state = loaded;
  if (!state) throw new Error("embed before load");
  const { profile, layout, dimension, tokenizer } = state;
  const { texts, kind, overflow } = request;
  if (overflow !== undefined && overflow.length !== texts.length) {
    throw new Error(`overflow has ${overflow.length} entries for ${texts.length} texts`);
  }
  const prefix = prefixFor(profile, kind);

  // Tokenize once, untruncated, to know what truncation costs each text.
  const encoded = texts.map((text) => tokenizer.encode(prefix + text));
  const rows: number[][] = [];
  const extraRows: number[][] = [];
  const tokens: number[] = [];
  const truncatedTokens: number[] = [];
  const windows: Array<WireWindow[] | null> = [];
  encoded.forEach((ids, i) => {
    const spec = overflow?.[i];
    const split =
      spec?.policy === "split" && ids.length > profile.maxTokens
        ? splitText(state, texts[i] ?? "", prefix, spec.overlapTokens)
        : null;
    if (split) {
      const wire = split.map((window, k) => {
        let row = i;
        if (k > 0) {
          row = texts.length + extraRows.length;
          extraRows.push(window.ids);
        }
        return { text: window.text, tokens: window.ids.length, row };
      });
      rows.push(split[0]?.ids ?? []);
      tokens.push(ids.length);
      truncatedTokens.push(0);
      windows.push(wire);
    } else {
      const row = truncateIds(ids, profile.maxTokens, layout);
      rows.push(row);
      tokens.push(row.length);
      truncatedTokens.push(Math.max(0, ids.length - profile.maxTokens));
      windows.push(null);
    }
  });
  rows.push(...extraRows);

  const batches = planBatches(
    rows.map((row) => row.length),
    { maxBatchTokens: state.options.maxBatchTokens, maxBatchSize: state.options.maxBatchSize },
  );
  return {
    id: request.id,
    rows,
    batches,
    nextBatch: 0,
    dimension,
    vectors: new Float32Array(rows.length * dimension),
    tokens,
    truncatedTokens,
    windows,
  };
}

/** Runs the job's next batch; resolves true when the job has no batches left. */
async function runNextBatch(job: EmbedJob): Promise<boolean> {
  const state = loaded;
  if (!state) throw new Error("embed before load");
  const batch = job.batches[job.nextBatch++];
  if (batch) {
    const { dimension } = job;
    const pooled = await runBatch(
      state,
      batch.map((index) => job.rows[index] ?? []),
    );
    batch.forEach((index, row) => {
      job.vectors.set(pooled.subarray(row * dimension, (row + 1) * dimension), index * dimension);
    });
  }
  return job.nextBatch >= job.batches.length;
}

function prefixFor(profile: ModelProfile, kind: EmbedKind): string {
  return kind === "query" ? profile.queryPrefix : profile.passagePrefix;
}

function countTokens(texts: string[], kind: EmbedKind): number[] {
  const state = loaded;
  if (!state) throw new Error("count before load");
  const prefix = prefixFor(state.profile, kind);
  return texts.map((text) => state.tokenizer.encode(prefix + text).length);
}

type Send = (message: WorkerResponse, transfer: ArrayBuffer[]) => void;

/**
 * Runs as a forked child process (what WorkerEmbedder uses) or as a worker thread. The process is the
 * default because onnxruntime-node 1.21 (pinned by transformers.js 3.8) cannot be loaded again in a
 * second worker thread of the same process ("Module did not self-register") and aborts the whole
 * process when two threads run it; a child can be killed and replaced freely.
 */
function connect(onMessage: (request: WorkerRequest) => void): Send {
  const port = parentPort;
  if (port) {
    port.on("message", onMessage);
    return (message, transfer) => port.postMessage(message, transfer);
  }
  const send = process.send?.bind(process);
  if (send) {
    // The parent validates what it sends; this is the protocol boundary.
    process.on("message", (message) => onMessage(message as WorkerRequest));
    // No parent, no work: never linger as an orphan holding a model in memory.
    process.on("disconnect", () => process.exit(0));
    return (message) => {
      send(message);
    };
  }
  throw new Error("worker.ts must run as a forked child process or a worker thread");
}

/**
 * Work queue. One model run at a time: ORT already uses the configured intra-op threads, and
 * interleaving runs would only multiply peak memory. Passage embeds run one batch per turn, yielding to
 * the event loop in between so new messages arrive; loads, token counts and query embeds (a search
 * waiting on them) run before the next passage batch. Each request still gets one reply.
 */
const urgent: WorkerRequest[] = [];
const passages: Array<{ request: Extract<WorkerRequest, { type: "embed" }>; job?: EmbedJob }> = [];
let pumping = false;

const reply = connect((request) => {
  if (request.type === "embed" && request.kind === "passage") passages.push({ request });
  else urgent.push(request);
  void pump();
});

async function pump(): Promise<void> {
  if (pumping) return;
  pumping = true;
  try {
    for (;;) {
      const request = urgent.shift();
      if (request) {
        await handle(request);
        continue;
      }
      const entry = passages[0];
      if (!entry) break;
      try {
        entry.job ??= prepareEmbed(entry.request);
        if (await runNextBatch(entry.job)) {
          passages.shift();
          sendEmbedded(entry.job);
        }
      } catch (error) {
        passages.shift();
        replyError(entry.request.id, error);
      }
      await new Promise(setImmediate);
    }
  } finally {
    pumping = false;
  }
}

function sendEmbedded(job: EmbedJob): void {
  const { id, vectors, tokens, truncatedTokens, windows } = job;
  const buffer = vectors.buffer;
  // Between threads the buffer moves instead of being copied (a child process copies anyway).
  reply(
    { type: "embedded", id, vectors, tokens, truncatedTokens, windows },
    buffer instanceof ArrayBuffer ? [buffer] : [],
  );
}

function replyError(id: number, error: unknown): void {
  reply({ type: "error", id, message: error instanceof Error ? error.message : String(error) }, []);
}

async function handle(request: WorkerRequest): Promise<void> {
  try {
    if (request.type === "load") {
      const info = await load(request.options);
      reply({ type: "loaded", id: request.id, info }, []);
    } else if (request.type === "count") {
      reply({ type: "counted", id: request.id, counts: countTokens(request.texts, request.kind) }, []);
    } else {
      const job = prepareEmbed(request);
      // Query embeds are small: run them through.
      let done = false;
      while (!done) done = await runNextBatch(job);
      sendEmbedded(job);
    }
  } catch (error) {
    replyError(request.id, error);
  }
}
