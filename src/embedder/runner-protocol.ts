/**
 * Messages between the embedding process (worker.ts, via session-pool.ts) and its ONNX runner threads
 * (onnx-runner.ts). Types only, so the pool can share them without importing the ONNX runtime.
 */
import type { Pooling } from "./pooling.js";

export interface RunnerLoad {
  /** The .onnx file (transformers.js resolved and, for a hub model, downloaded it). */
  modelPath: string;
  /** Intra-op threads of this session. */
  threads: number;
  pooling: Pooling;
  normalize: boolean;
}

export type RunnerRequest =
  | { type: "load"; id: number; options: RunnerLoad }
  /** One right-padded batch, dims [batch, sequence]; its buffers are transferred, not copied. */
  | {
      type: "run";
      id: number;
      inputIds: BigInt64Array;
      attentionMask: BigInt64Array;
      dims: [number, number];
    };

export type RunnerResponse =
  | { type: "loaded"; id: number; outputs: string[] }
  /** batch × dimension pooled rows. */
  | { type: "ran"; id: number; pooled: Float32Array }
  | { type: "error"; id: number; message: string };
