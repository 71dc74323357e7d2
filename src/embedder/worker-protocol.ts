/**
 * Messages between WorkerEmbedder (main thread) and worker.ts. Types only, so the main thread can
 * share them without importing the ONNX runtime.
 */
import type { EmbedKind, ModelInfo } from "../domain/types.js";
import type { ProfileOverrides } from "./profiles.js";

/** Where the model comes from; decided on the main thread so errors name what the user configured. */
export type ModelSource =
  | { kind: "local"; directory: string }
  | { kind: "hub"; id: string; cacheDir: string };

export interface WorkerLoadOptions {
  source: ModelSource;
  /** transformers.js dtype: "q8" → onnx/model_quantized.onnx, "fp32" → onnx/model.onnx, … */
  dtype: string;
  threads: number;
  maxBatchTokens: number;
  maxBatchSize: number;
  profileOverrides: ProfileOverrides;
}

export type WorkerRequest =
  | { type: "load"; id: number; options: WorkerLoadOptions }
  | { type: "embed"; id: number; texts: string[]; kind: EmbedKind };

export type WorkerResponse =
  | { type: "loaded"; id: number; info: ModelInfo }
  | {
      type: "embedded";
      id: number;
      /** texts.length × dimension, input order; its buffer is transferred, not copied. */
      vectors: Float32Array;
      tokens: number[];
      truncatedTokens: number[];
    }
  | { type: "error"; id: number; message: string };
