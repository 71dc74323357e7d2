/**
 * The ONNX sessions of the embedding process, one worker thread each (onnx-runner.ts). A batch goes to
 * whichever runner is idle, so N single-threaded sessions work on N batches at once; the caller keeps
 * them busy by asking `idle()` before it plans the next batch.
 *
 * Threads, not processes: onnxruntime-node 1.30 loads in several threads of one process (1.21 could
 * not), and threads share the tokenizer's process and its memory.
 */
import { Worker } from "node:worker_threads";
import { buildBatchInputs } from "./encoding.js";
import type { RunnerLoad, RunnerRequest, RunnerResponse } from "./runner-protocol.js";

interface Runner {
  worker: Worker;
  busy: boolean;
  pending: Map<number, { resolve(response: RunnerResponse): void; reject(error: Error): void }>;
}

/** Compiled code starts onnx-runner.js; dev and tests run the sources under tsx (execArgv is inherited). */
function runnerUrl(): URL {
  const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  return new URL(`./onnx-runner${ext}`, import.meta.url);
}

export class SessionPool {
  private readonly runners: Runner[] = [];
  private nextId = 1;
  private failure: Error | undefined;

  /** Starts `sessions` runners one after the other (a failing model fails on the first). */
  static async start(sessions: number, options: RunnerLoad): Promise<SessionPool> {
    const pool = new SessionPool();
    try {
      for (let i = 0; i < sessions; i++) await pool.add(options);
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  get size(): number {
    return this.runners.length;
  }

  /** Runners free for another batch right now. */
  idle(): number {
    return this.runners.filter((r) => !r.busy).length;
  }

  /** Runs a batch on an idle runner; throws if none is idle (ask `idle()` first). */
  async run(
    inputIds: BigInt64Array,
    attentionMask: BigInt64Array,
    dims: [number, number],
  ): Promise<Float32Array> {
    if (this.failure) throw this.failure;
    const runner = this.runners.find((r) => !r.busy);
    if (!runner) throw new Error("no idle ONNX session");
    runner.busy = true;
    try {
      const response = await this.request(
        runner,
        { type: "run", id: this.nextId++, inputIds, attentionMask, dims },
        [inputIds.buffer as ArrayBuffer, attentionMask.buffer as ArrayBuffer],
      );
      if (response.type !== "ran") throw new Error(`unexpected runner response ${response.type}`);
      return response.pooled;
    } finally {
      runner.busy = false;
    }
  }

  /**
   * Pads token-id rows into one batch and runs it on an idle runner; returns its pooled (and, per
   * profile, normalised) rows. Claims the runner before it returns, so `idle()` counts it at once.
   */
  runRows(rows: readonly (readonly number[])[], padTokenId: number): Promise<Float32Array> {
    const { inputIds, attentionMask, seqLength } = buildBatchInputs(rows, padTokenId);
    return this.run(inputIds, attentionMask, [rows.length, seqLength]);
  }

  async close(): Promise<void> {
    await Promise.all(this.runners.map((r) => r.worker.terminate()));
    this.runners.length = 0;
  }

  private async add(options: RunnerLoad): Promise<void> {
    const worker = new Worker(runnerUrl());
    const runner: Runner = { worker, busy: true, pending: new Map() };
    worker.on("message", (response: RunnerResponse) => {
      const entry = runner.pending.get(response.id);
      runner.pending.delete(response.id);
      if (response.type === "error") entry?.reject(new Error(response.message));
      else entry?.resolve(response);
    });
    // A runner that dies takes the process's ability to embed with it: fail everything, so the parent
    // (WorkerEmbedder) sees the embedding process fail and replaces it whole.
    const fail = (error: Error) => {
      this.failure ??= error;
      for (const entry of runner.pending.values()) entry.reject(error);
      runner.pending.clear();
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`ONNX runner thread exited (code ${code})`)));
    this.runners.push(runner);
    await this.request(runner, { type: "load", id: this.nextId++, options });
    runner.busy = false;
  }

  private request(
    runner: Runner,
    message: RunnerRequest,
    transfer: ArrayBuffer[] = [],
  ): Promise<RunnerResponse> {
    return new Promise((resolve, reject) => {
      runner.pending.set(message.id, { resolve, reject });
      runner.worker.postMessage(message, transfer);
    });
  }
}
