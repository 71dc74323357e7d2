/**
 * One embed request inside the embedding process: its model input (text-inputs.ts), planned into batches
 * (batcher.ts), each batch run on an idle ONNX session, the pooled rows collected into one matrix.
 */
import type { EmbedKind } from "../domain/types.js";
import { planBatches } from "./batcher.js";
import { traceInputs } from "./input-trace.js";
import type { LoadedModel } from "./model-loader.js";
import type { ModelProfile } from "./profiles.js";
import type { SessionPool } from "./session-pool.js";
import { type EmbedInputs, embedInputs, type InputTokenizer } from "./text-inputs.js";
import type { WorkerRequest, WorkerResponse } from "./worker-protocol.js";

export type EmbedRequest = Extract<WorkerRequest, { type: "embed" }>;

/** What an embed job uses of a loaded model (tests pass fakes). */
export type EmbedModel = Pick<LoadedModel, "profile" | "layout" | "padTokenId" | "dimension"> & {
  tokenizer: InputTokenizer;
  sessions: Pick<SessionPool, "runRows">;
  options: Pick<LoadedModel["options"], "maxBatchTokens" | "maxBatchSize">;
};

export class EmbedJob {
  /** Row indexes per batch, in the order they are handed out. */
  readonly batches: number[][];
  /** rows × dimension, filled as batches come back. */
  private readonly vectors: Float32Array;

  private constructor(
    private readonly model: EmbedModel,
    readonly id: number,
    private readonly inputs: EmbedInputs,
  ) {
    const { options, dimension } = model;
    this.batches = planBatches(
      inputs.rows.map((row) => row.length),
      { maxBatchTokens: options.maxBatchTokens, maxBatchSize: options.maxBatchSize },
    );
    this.vectors = new Float32Array(inputs.rows.length * dimension);
  }

  /** Tokenizes and plans a request; throws on a malformed one. */
  static plan(model: EmbedModel, request: EmbedRequest): EmbedJob {
    const { texts, kind, overflow } = request;
    const inputs = embedInputs(
      model.tokenizer,
      { maxTokens: model.profile.maxTokens, layout: model.layout },
      texts,
      prefixFor(model.profile, kind),
      overflow,
    );
    traceInputs(kind, inputs.rows);
    return new EmbedJob(model, request.id, inputs);
  }

  get batchCount(): number {
    return this.batches.length;
  }

  /**
   * Runs batch `index` on an idle session (claimed before this returns) and stores its rows.
   */
  async runBatch(index: number): Promise<void> {
    const batch = this.batches[index] ?? [];
    const { dimension, padTokenId, sessions } = this.model;
    const pooled = await sessions.runRows(
      batch.map((row) => this.inputs.rows[row] ?? []),
      padTokenId,
    );
    batch.forEach((row, k) => {
      this.vectors.set(pooled.subarray(k * dimension, (k + 1) * dimension), row * dimension);
    });
  }

  /** The answer, once every batch ran. */
  response(): Extract<WorkerResponse, { type: "embedded" }> {
    const { tokens, truncatedTokens, windows } = this.inputs;
    return { type: "embedded", id: this.id, vectors: this.vectors, tokens, truncatedTokens, windows };
  }
}

export function prefixFor(profile: ModelProfile, kind: EmbedKind): string {
  return kind === "query" ? profile.queryPrefix : profile.passagePrefix;
}
