/**
 * Embedder backed by a separate embedding process (worker.ts, which runs its ONNX sessions in worker
 * threads), so inference never blocks the HTTP event loop and a crash of the native runtime cannot take
 * the server down with it: a process can be killed and replaced, which is what crash recovery needs.
 */
import { type ChildProcess, fork } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ProcessingError } from "../domain/errors.js";
import type { EmbedKind, EmbedOverflow, ModelInfo } from "../domain/types.js";
import type { EmbeddedWindow, Embedder, EmbedResult } from "./embedder.js";
import type { ProfileOverrides } from "./profiles.js";
import type { ModelSource, WorkerLoadOptions, WorkerRequest, WorkerResponse } from "./worker-protocol.js";

export interface EmbedderOptions {
  /** Hugging Face hub id, or a local directory in the transformers.js layout. */
  model: string;
  /** transformers.js dtype ("q8", "fp32", …). */
  dtype: string;
  /** Cores for inference, shared by the sessions. */
  threads: number;
  /** ONNX sessions running batches at once (each with threads / sessions intra-op threads). */
  sessions: number;
  maxBatchTokens: number;
  maxBatchSize: number;
  /** Download cache for hub models. */
  cacheDir: string;
  profileOverrides: ProfileOverrides;
}

export interface EmbedderLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

type Pending = { resolve(response: WorkerResponse): void; reject(error: Error): void };

/** One worker process and the requests it owns; a dead channel is replaced, never revived. */
interface Channel {
  child: ChildProcess;
  pending: Map<number, Pending>;
  failed: boolean;
}

interface Slot extends Channel {
  ready: Promise<ModelInfo>;
}

/** Local if it is an existing directory; a path-looking string that does not exist is an error, not a hub id. */
function modelSource(options: EmbedderOptions): ModelSource {
  const { model } = options;
  if (existsSync(model) && statSync(model).isDirectory()) {
    return { kind: "local", directory: resolve(model) };
  }
  if (isAbsolute(model) || model.startsWith(".") || model.includes("\\") || model.split("/").length > 2) {
    throw new ProcessingError(`model directory not found: ${model} (and it is not a Hugging Face id)`, {
      retryable: false,
    });
  }
  return { kind: "hub", id: model, cacheDir: options.cacheDir };
}

/**
 * glibc malloc settings for the embedding process (the user's environment wins). Large blocks (≥ 64 KiB:
 * model loading's protobuf buffers, the runner threads' tensors and message buffers) get their own
 * mmap and go back to the system when freed, and free heap tops above 128 KiB are trimmed; glibc's
 * default raises the mmap threshold as such blocks are freed, so they land in per-thread heaps that
 * never shrink. Measured end to end on SciFact (docs/bench.md, "Peak RSS"): the embedder's peak fell
 * from 333–376 MB to 296–311 MB at the same tokens per CPU-second.
 */
const EMBEDDER_MALLOC_DEFAULTS = { MALLOC_MMAP_THRESHOLD_: "65536", MALLOC_TRIM_THRESHOLD_: "131072" };

/**
 * V8's young generation capped at 2 MB semi-spaces (Node 24 lets it grow to 128 MB); the flag the user
 * gives (in execArgv or NODE_OPTIONS) wins. Measured end to end with the server's own flag
 * (docs/bench.md, "Peak RSS"): server 165–169 → 127–135 MB, tree 460–504 → 428–442 MB, tokens per
 * CPU-second 1.03–1.10× (fewer pages touched between scavenges).
 */
export function withSmallYoungGeneration(execArgv: readonly string[]): string[] {
  const given = [...execArgv, process.env.NODE_OPTIONS ?? ""].some((arg) => arg.includes("semi-space-size"));
  return given ? [...execArgv] : [...execArgv, "--max-semi-space-size=2"];
}

/**
 * Compiled code forks dist/embedder/worker.js; dev and tests run the sources under tsx, whose
 * `--import tsx` the child inherits through process.execArgv.
 */
function spawnWorker(): ChildProcess {
  const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  return fork(fileURLToPath(new URL(`./worker${ext}`, import.meta.url)), [], {
    // Structured clone over IPC: Float32Array and typed errors survive, JSON would not.
    serialization: "advanced",
    env: { ...EMBEDDER_MALLOC_DEFAULTS, ...process.env },
    execArgv: withSmallYoungGeneration(process.execArgv),
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
}

export class WorkerEmbedder implements Embedder {
  private slot: Slot | undefined;
  private modelInfo: ModelInfo | undefined;
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly options: EmbedderOptions,
    private readonly logger?: EmbedderLogger,
  ) {}

  load(): Promise<ModelInfo> {
    if (this.closed) {
      return Promise.reject(new ProcessingError("embedder is closed", { retryable: true, expected: true }));
    }
    if (this.slot) return this.slot.ready;
    let source: ModelSource;
    try {
      source = modelSource(this.options);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.start(source).ready;
  }

  info(): ModelInfo {
    if (!this.modelInfo) throw new Error("embedder model not loaded yet: call load() first");
    return this.modelInfo;
  }

  async embed(texts: string[], kind: EmbedKind, overflow?: EmbedOverflow[]): Promise<EmbedResult> {
    if (overflow !== undefined && overflow.length !== texts.length) {
      throw new RangeError(`overflow has ${overflow.length} entries for ${texts.length} texts`);
    }
    if (texts.length === 0) return { vectors: [], tokens: [], truncatedTokens: [], windows: [] };
    const info = await this.load();
    const slot = this.liveSlot();
    const request: WorkerRequest = { type: "embed", id: this.nextId++, texts, kind };
    // Nothing to split: the worker truncates by default, so the specs need not cross the channel.
    if (overflow?.some((spec) => spec.policy === "split")) request.overflow = overflow;
    const response = await this.request(slot, request);
    if (response.type !== "embedded") throw new Error(`unexpected worker response ${response.type}`);

    const { dimension } = info;
    const rows = response.vectors.length / dimension;
    const windowRows = response.windows.reduce((sum, w) => sum + (w ? w.length - 1 : 0), 0);
    if (rows !== texts.length + windowRows) {
      throw new ProcessingError(
        `embedding worker returned ${response.vectors.length} values for ${texts.length + windowRows} × ${dimension}`,
        { retryable: true },
      );
    }
    // Views into the one received buffer: no copy per text or window.
    const row = (index: number): Float32Array =>
      response.vectors.subarray(index * dimension, (index + 1) * dimension);
    const vectors = texts.map((_, i) => row(i));
    const windows = response.windows.map((wire): EmbeddedWindow[] | null =>
      wire ? wire.map((w) => ({ text: w.text, vector: row(w.row), tokens: w.tokens })) : null,
    );
    return { vectors, tokens: response.tokens, truncatedTokens: response.truncatedTokens, windows };
  }

  async countTokens(texts: string[], kind: EmbedKind): Promise<number[]> {
    if (texts.length === 0) return [];
    await this.load();
    const response = await this.request(this.liveSlot(), { type: "count", id: this.nextId++, texts, kind });
    if (response.type !== "counted") throw new Error(`unexpected worker response ${response.type}`);
    return response.counts;
  }

  /** The current worker; throws retryable when it died between load and this call. */
  private liveSlot(): Slot {
    const slot = this.slot;
    if (!slot || slot.failed) {
      // The caller's retry starts a fresh one.
      throw new ProcessingError("embedding worker stopped before the request was sent", { retryable: true });
    }
    return slot;
  }

  async close(): Promise<void> {
    this.closed = true;
    const slot = this.slot;
    if (!slot) return;
    // The server is stopping: what was still embedding goes back to the queue, which is no fault.
    this.fail(slot, "embedder closed", true);
    await stop(slot.child, "SIGTERM");
  }

  /** Test hook: kills the worker as a crash would (SIGKILL), so recovery can be exercised. */
  async terminateWorkerForTest(): Promise<void> {
    const slot = this.slot;
    if (!slot) return;
    await stop(slot.child, "SIGKILL");
    this.fail(slot, "embedding worker killed");
  }

  private start(source: ModelSource): Slot {
    const child = spawnWorker();
    const pending = new Map<number, Pending>();
    const channel: Channel = { child, pending, failed: false };

    child.on("message", (message) => {
      // The worker is ours and speaks worker-protocol.ts; this is the protocol boundary.
      const response = message as WorkerResponse;
      const entry = pending.get(response.id);
      if (!entry) return;
      pending.delete(response.id);
      this.updateRef(channel);
      entry.resolve(response);
    });
    child.on("error", (error) => this.fail(channel, `embedding worker failed: ${error.message}`));
    child.on("exit", (code, signal) =>
      this.fail(channel, `embedding worker exited (${signal ? `signal ${signal}` : `code ${code}`})`),
    );

    const loadOptions: WorkerLoadOptions = {
      source,
      dtype: this.options.dtype,
      threads: this.options.threads,
      sessions: this.options.sessions,
      maxBatchTokens: this.options.maxBatchTokens,
      maxBatchSize: this.options.maxBatchSize,
      profileOverrides: this.options.profileOverrides,
    };
    const ready = this.request(channel, { type: "load", id: this.nextId++, options: loadOptions }).then(
      (response) => {
        if (response.type !== "loaded") throw new Error(`unexpected worker response ${response.type}`);
        this.modelInfo = response.info;
        this.logger?.info({ model: response.info }, "embedding model loaded");
        const source = response.info.profileSource;
        if (source && source.by !== "name") {
          // Not recognised by name: say what was assumed, so a wrong guess is visible and fixable.
          this.logger?.warn(
            { profile: response.info.profile, prefixes: response.info.prefixes, source },
            `model profile ${response.info.profile} chosen by ${source.by === "architecture" ? "the model's shape" : "default"} (${source.detail}); if the model needs other prefixes, pooling or token limit, set EMBEDDING_PASSAGE_PREFIX, EMBEDDING_QUERY_PREFIX, EMBEDDING_POOLING or EMBEDDING_MAX_TOKENS`,
          );
        }
        return response.info;
      },
      async (error: unknown) => {
        // A model that cannot load will not load on the next call either, but a later attempt (after
        // fixing the directory, or after a crash) must start from scratch: drop this worker.
        this.logger?.error({ err: error }, "embedding model failed to load");
        if (this.slot === channel) this.slot = undefined;
        channel.failed = true;
        await stop(child, "SIGTERM");
        throw error;
      },
    );
    // Same object as the channel, so fail() marks the slot too.
    const slot: Slot = Object.assign(channel, { ready });
    this.slot = slot;
    return slot;
  }

  private request(channel: Channel, message: WorkerRequest): Promise<WorkerResponse> {
    return new Promise<WorkerResponse>((resolvePromise, rejectPromise) => {
      channel.pending.set(message.id, {
        resolve: (response) => {
          if (response.type === "error") {
            // Load failures (bad directory, unknown dtype) are configuration errors: retrying cannot help.
            rejectPromise(new ProcessingError(response.message, { retryable: message.type !== "load" }));
          } else {
            resolvePromise(response);
          }
        },
        reject: rejectPromise,
      });
      this.updateRef(channel);
      channel.child.send(message, (error) => {
        if (!error) return;
        // A worker we cannot talk to is useless even if still running: replace it.
        this.fail(channel, `could not reach the embedding worker: ${error.message}`);
        channel.child.kill("SIGKILL");
      });
    });
  }

  /** Rejects everything the channel owns (retryable: the work itself was fine) and forgets the worker. */
  private fail(channel: Channel, message: string, expected = false): void {
    if (channel.failed && channel.pending.size === 0) return;
    const wasLive = !channel.failed;
    channel.failed = true;
    if (this.slot === channel) this.slot = undefined;
    if (wasLive && !this.closed) this.logger?.error({ pending: channel.pending.size }, message);
    for (const entry of channel.pending.values())
      entry.reject(new ProcessingError(message, { retryable: true, expected }));
    channel.pending.clear();
  }

  /** An idle worker must not keep the process alive; a busy one must. */
  private updateRef(channel: Channel): void {
    if (channel.pending.size > 0) {
      channel.child.ref();
      channel.child.channel?.ref();
    } else {
      channel.child.unref();
      channel.child.channel?.unref();
    }
  }
}

/** Signals the child and waits for it to be gone. */
function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolvePromise) => {
    child.once("exit", () => resolvePromise());
    // An idle child is unref'd; without this the caller's await could be the last thing alive and the
    // process would exit before "exit" arrives.
    child.ref();
    child.kill(signal);
  });
}
