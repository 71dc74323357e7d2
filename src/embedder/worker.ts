/**
 * The embedding process: tokenizes, truncates or splits, plans batches and hands them to its ONNX
 * sessions (session-pool.ts, one worker thread each; onnx-runner.ts is the only module touching ONNX
 * Runtime). transformers.js supplies the tokenizer, the config and the model file. Speaks the protocol
 * in worker-protocol.ts.
 */
import { existsSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { parentPort } from "node:worker_threads";
import {
  AutoConfig,
  AutoModel,
  AutoTokenizer,
  env,
  type PreTrainedTokenizer,
} from "@huggingface/transformers";
import type { EmbedKind, ModelInfo } from "../domain/types.js";
import { planBatches } from "./batcher.js";
import { buildBatchInputs, type SpecialTokenLayout, specialTokenLayout, truncateIds } from "./encoding.js";
import { traceInputs } from "./input-trace.js";
import { modelEvidence } from "./model-files.js";
import {
  type ModelEvidence,
  type ModelProfile,
  type ProfileRecognition,
  recogniseProfile,
} from "./profiles.js";
import { SessionPool } from "./session-pool.js";
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
  sessions: SessionPool;
  profile: ModelProfile;
  layout: SpecialTokenLayout;
  padTokenId: number;
  dimension: number;
  options: WorkerLoadOptions;
  info: ModelInfo;
}

let loaded: LoadedModel | undefined;

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

async function load(options: WorkerLoadOptions): Promise<ModelInfo> {
  const { source, dtype } = options;
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
    const state = await prepare(
      options,
      displayId,
      dtype,
      tokenizer,
      config,
      { profile, recognition, evidence },
      sessions,
    );
    await loaded?.sessions.close();
    loaded = state;
    return state.info;
  } catch (error) {
    // Release the ORT sessions of a model we will not use.
    await sessions.close();
    throw error;
  }
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

  const state: LoadedModel = {
    tokenizer,
    sessions,
    profile: { ...profile, maxTokens },
    layout,
    padTokenId,
    dimension: 0,
    options,
    info: {
      id: displayId,
      // What OpenAI-style clients call the model; a local export names its origin in config.json.
      hubId: options.source.kind === "hub" ? options.source.id : evidence.nameOrPath,
      profile: profile.name,
      profileSource: recognition,
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

/** Runs one padded batch on an idle session; returns its pooled (and, per profile, normalised) rows. */
function runBatch(state: LoadedModel, rows: number[][]): Promise<Float32Array> {
  const { inputIds, attentionMask, seqLength } = buildBatchInputs(rows, state.padTokenId);
  return state.sessions.run(inputIds, attentionMask, [rows.length, seqLength]);
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
  /** Batches handed to a session and not back yet. */
  inFlight: number;
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
  traceInputs(kind, rows);

  const batches = planBatches(
    rows.map((row) => row.length),
    { maxBatchTokens: state.options.maxBatchTokens, maxBatchSize: state.options.maxBatchSize },
  );
  return {
    id: request.id,
    rows,
    batches,
    nextBatch: 0,
    inFlight: 0,
    dimension,
    vectors: new Float32Array(rows.length * dimension),
    tokens,
    truncatedTokens,
    windows,
  };
}

/** Runs the job's next batch on an idle session and stores its rows. */
async function runNextBatch(state: LoadedModel, job: EmbedJob): Promise<void> {
  const batch = job.batches[job.nextBatch++] ?? [];
  job.inFlight++;
  try {
    const { dimension } = job;
    const pooled = await runBatch(
      state,
      batch.map((index) => job.rows[index] ?? []),
    );
    batch.forEach((index, row) => {
      job.vectors.set(pooled.subarray(row * dimension, (row + 1) * dimension), index * dimension);
    });
  } finally {
    job.inFlight--;
  }
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
 * default: a native crash in ONNX Runtime then takes down only the child, which the parent replaces.
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
 * Work queue. Every idle session gets the next batch: query embeds (a search or /v1/embeddings waiting
 * on them) first, then passage embeds in arrival order, so one request's batches run on all sessions at
 * once. Loads and token counts are answered at once: they need the tokenizer only, which lives on this
 * thread while the sessions compute on theirs. Each request gets one reply.
 */
interface Work {
  request: Extract<WorkerRequest, { type: "embed" }>;
  job?: EmbedJob;
}
const queries: Work[] = [];
const passages: Work[] = [];

const reply = connect((request) => {
  if (request.type === "embed") {
    (request.kind === "query" ? queries : passages).push({ request });
    pump();
  } else {
    void handle(request);
  }
});

/** The first request that still has a batch to hand out. */
function nextWork(): { work: Work; queue: Work[] } | undefined {
  for (const queue of [queries, passages]) {
    const work = queue.find((w) => !w.job || w.job.nextBatch < w.job.batches.length);
    if (work) return { work, queue };
  }
  return undefined;
}

function pump(): void {
  const state = loaded;
  if (!state) return;
  while (state.sessions.idle() > 0) {
    const next = nextWork();
    if (!next) return;
    const { work, queue } = next;
    let job: EmbedJob;
    try {
      work.job ??= prepareEmbed(work.request);
      job = work.job;
    } catch (error) {
      remove(queue, work);
      replyError(work.request.id, error);
      continue;
    }
    if (job.batches.length === 0) {
      remove(queue, work);
      sendEmbedded(job);
      continue;
    }
    runNextBatch(state, job)
      .then(
        () => {
          if (!queue.includes(work) || job.inFlight > 0 || job.nextBatch < job.batches.length) return;
          remove(queue, work);
          sendEmbedded(job);
        },
        (error: unknown) => {
          // The first failed batch answers for the request; its other batches are dropped.
          if (remove(queue, work)) replyError(work.request.id, error);
        },
      )
      .finally(pump);
  }
}

function remove(queue: Work[], work: Work): boolean {
  const index = queue.indexOf(work);
  if (index >= 0) queue.splice(index, 1);
  return index >= 0;
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

async function handle(request: Exclude<WorkerRequest, { type: "embed" }>): Promise<void> {
  try {
    if (request.type === "load") {
      const info = await load(request.options);
      reply({ type: "loaded", id: request.id, info }, []);
      pump();
    } else {
      reply({ type: "counted", id: request.id, counts: countTokens(request.texts, request.kind) }, []);
    }
  } catch (error) {
    replyError(request.id, error);
  }
}
