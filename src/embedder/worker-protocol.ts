/**
 * Messages between WorkerEmbedder (main thread) and worker.ts. Types only, so the main thread can
 * share them without importing the ONNX runtime.
 */
import type { EmbedKind, EmbedOverflow, ModelInfo } from "../domain/types.js";
import type { ProfileOverrides } from "./profiles.js";
import type { ModelLocation } from "./transformers-location.js";

/** Where the model comes from; decided on the main thread so errors name what the user configured. */
export type ModelSource = ModelLocation;

export interface WorkerLoadOptions {
  source: ModelSource;
  /** transformers.js dtype: "q8" → onnx/model_quantized.onnx, "fp32" → onnx/model.onnx, … */
  dtype: string;
  /** Cores for inference, shared by the sessions (each gets threads / sessions intra-op threads). */
  threads: number;
  /** ONNX sessions running batches at once, each in its own thread. */
  sessions: number;
  maxBatchTokens: number;
  maxBatchSize: number;
  profileOverrides: ProfileOverrides;
}

export type WorkerRequest =
  | { type: "load"; id: number; options: WorkerLoadOptions }
  /** `overflow` per text; absent means truncate everything. */
  | { type: "embed"; id: number; texts: string[]; kind: EmbedKind; overflow?: EmbedOverflow[] }
  | { type: "count"; id: number; texts: string[]; kind: EmbedKind };

/** One window of a split text; its vector is row `row` of the response's `vectors`. */
export interface WireWindow {
  text: string;
  tokens: number;
  row: number;
}

export type WorkerResponse =
  | { type: "loaded"; id: number; info: ModelInfo }
  | {
      type: "embedded";
      id: number;
      /**
       * rows × dimension: row i is text i's vector (for a split text: its first window's), then the
       * further windows' rows. Crosses the IPC channel by structured clone (serialization "advanced").
       */
      vectors: Float32Array;
      tokens: number[];
      truncatedTokens: number[];
      /** Per text: its windows (two or more) when split, else null. */
      windows: Array<WireWindow[] | null>;
    }
  | { type: "counted"; id: number; counts: number[] }
  | { type: "error"; id: number; message: string };
