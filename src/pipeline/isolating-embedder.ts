import type { Logger } from "pino";
import { ProcessingError } from "../domain/errors.js";
import type { EmbedOverflow, OverflowSpec } from "../domain/types.js";
import type { Embedder } from "../embedder/embedder.js";
import type { EmbeddedChunk } from "./point-planner.js";

/** A chunk's text as the pipeline embeds it: a passage, cut as its overflow spec says. */
export interface PassageText {
  text: string;
  overflow: OverflowSpec;
}

/** Per text: what the embedder made of it, or why that text alone could not be embedded. */
export type IsolatedResult = EmbeddedChunk | { error: unknown };

/**
 * Wraps an Embedder so that one poisonous text fails only itself. A batch is embedded in one call;
 * if that call fails, each text is embedded alone and gets its own result or error. If every text
 * fails alone too, the cause is not a text and the batch's original error is thrown. An outage
 * (ProcessingError.outage) is thrown at once: no text is at fault, and one by one would only hammer
 * an engine that is down or rate-limiting.
 */
export class IsolatingEmbedder {
  constructor(
    private readonly embedder: Pick<Embedder, "embed">,
    private readonly log?: Logger,
  ) {}

  /** One result per text, in input order. Throws only when no text is at fault (see the class). */
  async embedPassages(texts: readonly PassageText[]): Promise<IsolatedResult[]> {
    try {
      return await this.embedAll(texts);
    } catch (error) {
      if (texts.length === 1 || (error instanceof ProcessingError && error.outage)) throw error;
      this.log?.warn(
        { err: error, chunks: texts.length },
        "embedding a batch failed; embedding its chunks one by one to find the cause",
      );
      const results: IsolatedResult[] = [];
      for (const text of texts) {
        try {
          const [embedded] = await this.embedAll([text]);
          results.push(embedded ?? { error: new Error("no embedding returned") });
        } catch (textError) {
          results.push({ error: textError });
        }
      }
      if (results.every((r) => "error" in r)) throw error;
      return results;
    }
  }

  private async embedAll(batch: readonly PassageText[]): Promise<EmbeddedChunk[]> {
    const result = await this.embedder.embed(
      batch.map((t) => t.text),
      "passage",
      batch.map(({ overflow }) => embedOverflow(overflow)),
    );
    return batch.map((_, index) => {
      const vector = result.vectors[index];
      if (!vector)
        throw new Error(`embedder returned ${result.vectors.length} vectors for ${batch.length} texts`);
      return {
        vector,
        tokens: result.tokens[index] ?? 0,
        truncatedTokens: result.truncatedTokens[index] ?? 0,
        windows: result.windows[index] ?? null,
      };
    });
  }
}

/** A pooled chunk is split like any other; its windows are averaged when its point is planned. */
function embedOverflow(overflow: OverflowSpec): EmbedOverflow {
  return {
    policy: overflow.policy === "truncate" ? "truncate" : "split",
    overlapTokens: overflow.overlapTokens,
  };
}
