/**
 * Texts → model input rows: the prefix, the tokenizer, then truncation or, under the split policy, cutting
 * into windows (windows.ts plans them). Needs a tokenizer only, no ONNX session, so tests drive it with a
 * model's real tokenizer.
 */
import type { EmbedOverflow } from "../domain/types.js";
import { type SpecialTokenLayout, truncateIds } from "./encoding.js";
import { splitIntoWindows } from "./windows.js";
import type { WireWindow } from "./worker-protocol.js";

/** The part of a tokenizer this module uses (transformers.js's PreTrainedTokenizer has it). */
export interface InputTokenizer {
  encode(text: string, options?: { add_special_tokens?: boolean }): number[];
}

/** What the model allows per input, and where its special tokens sit. */
export interface InputLimits {
  /** Tokens per input, prefix and special tokens included. */
  maxTokens: number;
  layout: SpecialTokenLayout;
}

/** A window of a split text with its model input (prefix and special tokens included). */
export interface TextWindow {
  text: string;
  ids: number[];
}

/**
 * Cuts a text over the model's limit into overlapping windows that are substrings of it and each fit
 * (prefix and special tokens included). Returns null when it cannot produce two windows (the caller
 * then truncates).
 */
export function splitText(
  tokenizer: InputTokenizer,
  limits: InputLimits,
  text: string,
  prefix: string,
  overlapTokens: number,
): TextWindow[] | null {
  const { maxTokens, layout } = limits;
  // The splitter measures each window whole; keep those ids so no window is tokenized twice.
  const encoded = new Map<string, number[]>();
  const encodeWindow = (windowText: string): number[] => {
    let ids = encoded.get(windowText);
    if (!ids) {
      ids = tokenizer.encode(prefix + windowText);
      encoded.set(windowText, ids);
    }
    return ids;
  };
  const prefixTokens = prefix.length > 0 ? tokenizer.encode(prefix, { add_special_tokens: false }).length : 0;
  const windows = splitIntoWindows(
    text,
    {
      piece: (piece) => tokenizer.encode(piece, { add_special_tokens: false }).length,
      window: (windowText) => encodeWindow(windowText).length,
    },
    { maxTokens, fixedTokens: layout.prefixLength + layout.suffixLength + prefixTokens, overlapTokens },
  );
  if (windows.length < 2) return null;
  return windows.map((w) => ({ text: w.text, ids: truncateIds(encodeWindow(w.text), maxTokens, layout) }));
}

/** The model input of an embed request, and what each text cost. */
export interface EmbedInputs {
  /** Row i is text i (a split text's first window), then the further windows of split texts. */
  rows: number[][];
  /** Per text: its tokens (a split text's: all of them, untruncated). */
  tokens: number[];
  /** Per text: tokens cut off by truncation. */
  truncatedTokens: number[];
  /** Per text: its windows (two or more, each naming its row) when split, else null. */
  windows: Array<WireWindow[] | null>;
}

/**
 * Tokenizes each text once, untruncated, to know what truncation costs it; then truncates it, or splits
 * it when its overflow spec says split and it is over the limit. `overflow` absent: truncate all.
 */
export function embedInputs(
  tokenizer: InputTokenizer,
  limits: InputLimits,
  texts: readonly string[],
  prefix: string,
  overflow?: readonly EmbedOverflow[],
): EmbedInputs {
  if (overflow !== undefined && overflow.length !== texts.length) {
    throw new Error(`overflow has ${overflow.length} entries for ${texts.length} texts`);
  }
  const { maxTokens, layout } = limits;
  const rows: number[][] = [];
  const extraRows: number[][] = [];
  const tokens: number[] = [];
  const truncatedTokens: number[] = [];
  const windows: Array<WireWindow[] | null> = [];
  texts.forEach((text, i) => {
    const ids = tokenizer.encode(prefix + text);
    const spec = overflow?.[i];
    const split =
      spec?.policy === "split" && ids.length > maxTokens
        ? splitText(tokenizer, limits, text, prefix, spec.overlapTokens)
        : null;
    if (split) {
      const wire = split.map((window, k) => {
        let row = i;
        if (k > 0) {
          row = texts.length + extraRows.length;
          extraRows.push(window.ids);
        }
        return { text: window.text, tokens: window.ids.length, row };
      });
      rows.push(split[0]?.ids ?? []);
      tokens.push(ids.length);
      truncatedTokens.push(0);
      windows.push(wire);
    } else {
      const row = truncateIds(ids, maxTokens, layout);
      rows.push(row);
      tokens.push(row.length);
      truncatedTokens.push(Math.max(0, ids.length - maxTokens));
      windows.push(null);
    }
  });
  rows.push(...extraRows);
  return { rows, tokens, truncatedTokens, windows };
}
