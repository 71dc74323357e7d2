import type { EmbedKind, EmbedOverflow, ModelInfo } from "../domain/types.js";

/** One window of a split text: a substring of the original text, embedded on its own. */
export interface EmbeddedWindow {
  text: string;
  vector: Float32Array;
  tokens: number;
}

export interface EmbedResult {
  /** One vector per input text, in input order (for a split text: its first window's vector). */
  vectors: Float32Array[];
  /** Model tokens per text, prefix and special tokens included, after truncation (split: whole text). */
  tokens: number[];
  /** Tokens cut off per text because it exceeded the model's limit (0 when it fitted or was split). */
  truncatedTokens: number[];
  /** Per text: its windows when the split policy cut it into two or more, else null. */
  windows: Array<EmbeddedWindow[] | null>;
}

/** How the engine behind an embedder is doing, for GET /v1/status. */
export interface EmbedderStatus {
  engine: "local" | "remote";
  /** ok, or why work is waiting: the engine is still starting, unreachable, or rate-limiting us. */
  state: "starting" | "ok" | "rate_limited" | "unavailable";
  lastError: string | null;
  lastErrorAt: string | null;
  /** Since when requests have failed without a success in between; null while the engine works. */
  failingSince: string | null;
  /** Engine-specific figures (remote: protocol, latency, 429s, effective rate, limits). */
  details?: Record<string, unknown>;
}

/** Turns text into vectors with one model, applying the model profile's prefix for `kind`. */
export interface Embedder {
  /** Load the model; resolves with its description. Idempotent. */
  load(): Promise<ModelInfo>;
  /** Model description; throws if called before `load` resolved. */
  info(): ModelInfo;
  /**
   * `overflow` per text (default: truncate). A query embed's first batch jumps ahead of queued passage
   * batches; a large one's other batches take turns with them.
   */
  embed(texts: string[], kind: EmbedKind, overflow?: EmbedOverflow[]): Promise<EmbedResult>;
  /** Exact model tokens per text with the prefix for `kind` and special tokens, untruncated. */
  countTokens(texts: string[], kind: EmbedKind): Promise<number[]>;
  /** The engine's health, for embedders whose engine can fail apart from this process (remote ones). */
  status?(): EmbedderStatus;
  close(): Promise<void>;
}
