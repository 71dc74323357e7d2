/**
 * The token limits the server enforces before anything is queued or embedded: bounds that need no
 * tokenizer, and the one check that asks the embedder to count the texts that may be over a limit.
 */
import type { EmbedKind, ModelInfo } from "../domain/types.js";
import type { Embedder } from "../embedder/embedder.js";

/**
 * Whether a text fits the model's limit without tokenizing it. No tokenizer gives more than a token per
 * UTF-8 byte, plus one where the text starts with a word (SentencePiece's lone "▁") and two special
 * tokens; the remote embedder's estimate (estimateTokens) keeps within the same bound. Characters are
 * not enough: a CJK character can be three tokens.
 */
export function surelyFits(text: string, prefix: string, maxTokens: number): boolean {
  return Buffer.byteLength(prefix + text, "utf8") + 3 <= maxTokens;
}

/**
 * The most tokens (prefix and special tokens counted once) a text may have to be cut into at most
 * `maxWindows` windows: each window holds the model's limit less its fixed tokens, and each after the
 * first repeats `overlapTokens` of the one before (at most half a window, as the splitter clamps it).
 * The fixed tokens are bounded as surelyFits bounds a text, so the figure errs low by a few tokens a
 * window; windows are cut at whitespace, so a text near the figure may still need one window more.
 */
export function maxChunkTokens(model: ModelInfo, overlapTokens: number, maxWindows: number): number {
  const fixed = Buffer.byteLength(model.prefixes.passage, "utf8") + 3;
  const window = Math.max(1, model.maxTokens - fixed);
  const overlap = Math.min(Math.max(0, Math.floor(overlapTokens)), Math.floor(window / 2));
  return maxWindows * window - (maxWindows - 1) * overlap;
}

/**
 * The queue's token estimate of a text (MAX_QUEUE_TOKENS, reservations, the pending-tokens gauge): rough,
 * exact counts come later. Not the remote embedder's estimateTokens, which is an upper bound.
 */
export function queueTokenEstimate(text: string): number {
  return Math.ceil(Buffer.byteLength(text, "utf8") / 3) + 2;
}

/** A text over the limit: its index among the texts checked, and its tokens as the model sees it. */
export interface OverlongText {
  index: number;
  tokens: number;
}

/**
 * The texts over `maxTokens` tokens with `kind`'s prefix and special tokens, in order. Only texts that
 * may be over it (surelyFits says no) are tokenized, by the embedder, so a request of short texts
 * costs no count at all.
 */
export async function overlongTexts(
  embedder: Pick<Embedder, "countTokens">,
  texts: readonly string[],
  kind: EmbedKind,
  prefix: string,
  maxTokens: number,
): Promise<OverlongText[]> {
  const suspects = texts.flatMap((text, index) => (surelyFits(text, prefix, maxTokens) ? [] : [index]));
  if (suspects.length === 0) return [];
  const counts = await embedder.countTokens(
    suspects.map((index) => texts[index] ?? ""),
    kind,
  );
  return suspects.flatMap((index, i) => {
    const tokens = counts[i] ?? 0;
    return tokens > maxTokens ? [{ index, tokens }] : [];
  });
}
