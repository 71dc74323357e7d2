/**
 * How the remote adapter counts tokens, which decides the token limit, the windows of a split text and
 * what counts against EMBEDDER_TPM. With the model's own tokenizer when the server can load it
 * (transformers.js needs tokenizer.json and tokenizer_config.json, no ONNX weights); otherwise with a
 * conservative estimate against the declared EMBEDDER_MAX_TOKENS.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { useModelLocation } from "../transformers-location.js";

export interface TokenCounter {
  readonly kind: "tokenizer" | "estimate";
  /** Tokens of a text as the model sees it, special tokens included. */
  count(text: string): number;
  /** Tokens of a piece of text on its own, without special tokens. */
  countPiece(text: string): number;
  /** The tokenizer's own limit (model_max_length) when it declares a sane one. */
  readonly maxLength: number | undefined;
  /** The model a local tokenizer directory was copied from (config.json `_name_or_path`), to pick its profile. */
  readonly nameOrPath: string | undefined;
}

/** Two special tokens ([CLS] … [SEP], <s> … </s>) is what most embedding models add. */
const ESTIMATED_SPECIAL_TOKENS = 2;

/**
 * An upper estimate of the tokens of `text` for the tokenizers embedding models use, without knowing
 * which: runs of ASCII letters and of digits count one token per two characters, ASCII punctuation one
 * each, any other character its UTF-8 byte length (byte-level BPE never needs more), and a digit run or
 * symbol that starts a word one more (SentencePiece and cl100k give the space its own token there).
 * Measured on all 5,183 SciFact documents it is at or above the real count for MiniLM's WordPiece,
 * XLM-R's SentencePiece (multilingual-e5), cl100k and o200k: 2.0–2.3× on English prose, 1.7–4.7× on
 * Korean and CJK. Strings no language writes (random consonants) can still count more than estimated.
 */
export function estimateTokens(text: string): number {
  let tokens = 0;
  for (const match of text.matchAll(/(\s)?([A-Za-z]+|[0-9]+|[\x21-\x7e]|[^\p{ASCII}\s])/gu)) {
    const run = match[2] ?? "";
    const wordStart = match[1] !== undefined || match.index === 0 ? 1 : 0;
    const code = run.charCodeAt(0);
    if (/^[A-Za-z]/.test(run)) tokens += Math.ceil(run.length / 2);
    else if (code >= 0x30 && code <= 0x39) tokens += Math.ceil(run.length / 2) + wordStart;
    else tokens += (code < 0x80 ? 1 : Buffer.byteLength(run, "utf8")) + wordStart;
  }
  return tokens;
}

export const ESTIMATE_COUNTER: TokenCounter = {
  kind: "estimate",
  count: (text) => estimateTokens(text) + ESTIMATED_SPECIAL_TOKENS,
  countPiece: estimateTokens,
  maxLength: undefined,
  nameOrPath: undefined,
};

/** The subset of transformers.js's PreTrainedTokenizer used here. */
interface Tokenizer {
  encode(text: string, options?: { add_special_tokens?: boolean }): number[];
  model_max_length?: unknown;
}

/**
 * Loads the tokenizer of `source`: a local directory (tokenizer.json and tokenizer_config.json are
 * enough) or a Hugging Face id (downloaded into `cacheDir`). transformers.js is imported only here and
 * only then, so a server counting by estimate never loads it.
 */
export async function loadTokenizerCounter(source: string, cacheDir: string): Promise<TokenCounter> {
  const { AutoTokenizer, env } = await import("@huggingface/transformers");
  let name: string;
  let nameOrPath: string | undefined;
  if (existsSync(source) && statSync(source).isDirectory()) {
    const directory = resolve(source);
    const missing = ["tokenizer.json", "tokenizer_config.json"].find((f) => !existsSync(join(directory, f)));
    if (missing) throw new Error(`tokenizer directory ${directory} is missing ${missing}`);
    nameOrPath = configNameOrPath(join(directory, "config.json"));
    name = useModelLocation(env, { kind: "local", directory });
  } else {
    name = useModelLocation(env, { kind: "hub", id: source, cacheDir });
  }
  const tokenizer: Tokenizer = await AutoTokenizer.from_pretrained(name);
  const max = tokenizer.model_max_length;
  return {
    kind: "tokenizer",
    count: (text) => tokenizer.encode(text).length,
    countPiece: (text) => tokenizer.encode(text, { add_special_tokens: false }).length,
    // Tokenizers without a limit declare a huge sentinel (1e30).
    maxLength: typeof max === "number" && max > 0 && max < 1e6 ? max : undefined,
    nameOrPath,
  };
}

/** `_name_or_path` of a config.json, if there is one (a tokenizer directory need not have it). */
function configNameOrPath(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const value: unknown = Reflect.get(JSON.parse(readFileSync(file, "utf8")) as object, "_name_or_path");
    return typeof value === "string" && value.length > 0 ? value : undefined;
  } catch {
    return undefined;
  }
}
