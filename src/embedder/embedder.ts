import type { EmbedKind, ModelInfo } from "../domain/types.js";

export interface EmbedResult {
  /** One vector per input text, in input order. */
  vectors: Float32Array[];
  /** Model tokens per text, prefix and special tokens included, after truncation. */
  tokens: number[];
  /** Tokens cut off per text because it exceeded the model's limit (0 when it fitted). */
  truncatedTokens: number[];
}

/** Turns text into vectors with one model, applying the model profile's prefix for `kind`. */
export interface Embedder {
  /** Load the model; resolves with its description. Idempotent. */
  load(): Promise<ModelInfo>;
  /** Model description; throws if called before `load` resolved. */
  info(): ModelInfo;
  embed(texts: string[], kind: EmbedKind): Promise<EmbedResult>;
  close(): Promise<void>;
}
