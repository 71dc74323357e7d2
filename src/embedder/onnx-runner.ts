/**
 * One ONNX Runtime session in a worker thread: the only module that touches onnxruntime-node. The
 * embedding process (worker.ts) starts one per session (EMBEDDING_SESSIONS) and hands each a padded
 * batch at a time; the runner answers with the pooled rows, so the big hidden state never crosses
 * threads. Speaks the messages in runner-protocol.ts.
 */
import { parentPort } from "node:worker_threads";
import { InferenceSession, Tensor } from "onnxruntime-node";
import { normalizeRows, pool } from "./pooling.js";
import type { RunnerLoad, RunnerRequest, RunnerResponse } from "./runner-protocol.js";

/**
 * Session options, each measured on the 2-core bench machine (docs/bench.md, "Session options"):
 * - intra-op threads from the caller (one per session by default: two single-threaded sessions
 *   working on different batches beat one session splitting every operator across two threads);
 * - no spinning: an idle ORT thread otherwise burns its core waiting for the next operator, which
 *   costs CPU time (and other processes' time) for no tokens;
 * - no memory pattern: it keeps an allocation plan per input shape, and sorted batches have a new
 *   sequence length almost every time, so it only grew memory;
 * - the CPU memory arena and graph optimisation "all" (ORT's defaults) stay: without the arena, or at
 *   lower optimisation levels, the same batches took more CPU time.
 */
function sessionOptions(threads: number): InferenceSession.SessionOptions {
  return {
    executionProviders: ["cpu"],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    enableCpuMemArena: true,
    enableMemPattern: false,
    extra: { session: { intra_op: { allow_spinning: "0" }, inter_op: { allow_spinning: "0" } } },
  };
}

let session: InferenceSession | undefined;
let settings: RunnerLoad | undefined;

async function load(options: RunnerLoad): Promise<string[]> {
  session = await InferenceSession.create(options.modelPath, sessionOptions(options.threads));
  settings = options;
  return [...session.outputNames];
}

function hiddenStateName(names: readonly string[]): string {
  const name = ["last_hidden_state", "token_embeddings"].find((n) => names.includes(n));
  if (!name)
    throw new Error("model output has no last_hidden_state: is this an encoder (feature-extraction) model?");
  return name;
}

/** Pooling works in float32; fp16 graphs return float16 (IEEE half floats as 16-bit words). */
function float32Of(tensor: Tensor): Float32Array {
  const { data } = tensor;
  if (data instanceof Float32Array) return data;
  if (tensor.type === "float16" && data instanceof Uint16Array) return Float32Array.from(data, halfToFloat);
  throw new Error(`unexpected hidden state type ${tensor.type} (float32 or float16 expected)`);
}

function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** Runs one padded batch; returns pooled (and, when asked, normalised) rows, batch × dim. */
async function run(
  inputIds: BigInt64Array,
  attentionMask: BigInt64Array,
  dims: [number, number],
): Promise<Float32Array> {
  if (!session || !settings) throw new Error("run before load");
  const feeds: Record<string, Tensor> = {
    input_ids: new Tensor("int64", inputIds, dims),
    attention_mask: new Tensor("int64", attentionMask, dims),
  };
  // Single sequences: segment 0 everywhere, for the models that take the input at all.
  if (session.inputNames.includes("token_type_ids")) {
    feeds.token_type_ids = new Tensor("int64", new BigInt64Array(inputIds.length), dims);
  }
  const output = await session.run(feeds);
  try {
    const hidden = output[hiddenStateName(session.outputNames)];
    if (!hidden) throw new Error("model returned no hidden state");
    const pooled = pool(float32Of(hidden), hidden.dims, attentionMask, settings.pooling);
    if (settings.normalize) normalizeRows(pooled, hidden.dims[2] ?? 0);
    return pooled;
  } finally {
    // Output buffers are native-backed: release them now rather than at GC, so memory stays flat.
    for (const value of Object.values(output)) value.dispose();
  }
}

const port = parentPort;
if (!port) throw new Error("onnx-runner.ts must run as a worker thread");
const reply = (message: RunnerResponse, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

port.on("message", async (request: RunnerRequest) => {
  try {
    if (request.type === "load") {
      reply({ type: "loaded", id: request.id, outputs: await load(request.options) });
    } else {
      const pooled = await run(request.inputIds, request.attentionMask, request.dims);
      reply({ type: "ran", id: request.id, pooled }, [pooled.buffer as ArrayBuffer]);
    }
  } catch (error) {
    reply({ type: "error", id: request.id, message: error instanceof Error ? error.message : String(error) });
  }
});
