/**
 * What a remote engine is asked to embed for a list of texts: each text with the model's prefix, cut to
 * the token limit by its overflow policy (split into windows, or truncated) with the same window code as
 * the local model (windows.ts), so an engine never sees more than the limit and never truncates silently.
 * Engines take text, not token ids, so truncation keeps the longest run of whole words that fits.
 */
import type { OverflowSpec } from "../../domain/types.js";
import { type PlannedWindow, splitIntoWindows, type WindowCounter } from "../windows.js";
import type { TokenCounter } from "./token-counter.js";

/** One text sent to the engine: prefix included, within the limit. */
export interface PlannedInput {
  text: string;
  tokens: number;
}

/** What became of one text: the inputs that carry it, and what EmbedResult reports for it. */
export interface PlannedText {
  /** Indexes into the plan's inputs: one, or one per window of a split text. */
  inputs: number[];
  /** Its windows (two or more) when split, else null. */
  windows: PlannedWindow[] | null;
  /** Tokens with prefix and special tokens: of the whole text when it fits or is split, else of what was kept. */
  tokens: number;
  truncatedTokens: number;
}

export interface InputPlan {
  texts: PlannedText[];
  inputs: PlannedInput[];
}

export interface PlanOptions {
  prefix: string;
  maxTokens: number;
  counter: TokenCounter;
}

/** Main-thread tokenization of a large reservation takes a while: give the event loop a turn every few ms. */
const YIELD_EVERY_MS = 8;

export async function planInputs(
  texts: readonly string[],
  overflow: readonly OverflowSpec[] | undefined,
  options: PlanOptions,
): Promise<InputPlan> {
  const { prefix, maxTokens, counter } = options;
  const windowCounter: WindowCounter = {
    piece: (piece) => counter.countPiece(piece),
    window: (windowText) => counter.count(prefix + windowText),
  };
  const fixedTokens = counter.count("") + (prefix.length > 0 ? counter.countPiece(prefix) : 0);
  const inputs: PlannedInput[] = [];
  const planned: PlannedText[] = [];
  const add = (text: string, tokens: number): number => inputs.push({ text: prefix + text, tokens }) - 1;

  let turnStarted = performance.now();
  for (const [index, text] of texts.entries()) {
    if (performance.now() - turnStarted > YIELD_EVERY_MS) {
      await new Promise(setImmediate);
      turnStarted = performance.now();
    }
    const tokens = counter.count(prefix + text);
    if (tokens <= maxTokens) {
      planned.push({ inputs: [add(text, tokens)], windows: null, tokens, truncatedTokens: 0 });
      continue;
    }
    const spec = overflow?.[index];
    if (spec?.policy === "split") {
      const windows = splitIntoWindows(text, windowCounter, {
        maxTokens,
        fixedTokens,
        overlapTokens: spec.overlapTokens,
      });
      // A window still over the limit after the splitter's shrinking rounds (a tokenizer that merges
      // very differently in context) is sent as it is: the engine's refusal names it, nothing is cut silently.
      if (windows.length >= 2) {
        planned.push({
          inputs: windows.map((w) => add(w.text, w.tokens)),
          windows,
          tokens,
          truncatedTokens: 0,
        });
        continue;
      }
    }
    // Truncate (also a split that found no two windows): the first window without overlap is the
    // longest run of whole words that fits.
    const [kept] = splitIntoWindows(text, windowCounter, {
      maxTokens,
      fixedTokens,
      overlapTokens: 0,
      maxWindows: 1,
    });
    if (!kept) {
      throw new RangeError(
        `the prefix ${JSON.stringify(prefix)} leaves no room for text in ${maxTokens} tokens`,
      );
    }
    planned.push({
      inputs: [add(kept.text, kept.tokens)],
      windows: null,
      tokens: kept.tokens,
      truncatedTokens: tokens - kept.tokens,
    });
  }
  return { texts: planned, inputs };
}
