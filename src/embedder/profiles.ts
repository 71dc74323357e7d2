/**
 * Model profiles: what a model needs around the raw text (prefixes), how its token vectors become one
 * vector (pooling, normalisation) and how many tokens it was trained on. Getting any of these wrong
 * gives plausible-looking but worse vectors, so a model is recognised from its own files: its names
 * (hub id, directory, config.json `_name_or_path`), its shape (config.json and the tokenizer class)
 * when no name is known, and sentence-transformers' settings when the directory has them.
 */
export interface ModelProfile {
  name: string;
  passagePrefix: string;
  queryPrefix: string;
  pooling: "mean" | "cls";
  normalize: boolean;
  maxTokens: number;
}

/** Settings that win over the built-in profile (EMBEDDING_PASSAGE_PREFIX etc.). */
export interface ProfileOverrides {
  passagePrefix?: string;
  queryPrefix?: string;
  pooling?: "mean" | "cls";
  maxTokens?: number;
}

/** What a model's files say about it (model-files.ts reads them); absent fields were not found. */
export interface ModelEvidence {
  /** Hub id or local directory as configured. */
  modelId: string;
  /** config.json `_name_or_path`: the model a local copy was saved from. */
  nameOrPath?: string;
  /** config.json `model_type`, e.g. "bert", "xlm-roberta". */
  modelType?: string;
  hiddenSize?: number;
  numHiddenLayers?: number;
  vocabSize?: number;
  /** tokenizer_config.json `tokenizer_class`, e.g. "XLMRobertaTokenizer". */
  tokenizerClass?: string;
  /** sentence-transformers' own settings (config_sentence_transformers.json, the pooling module, sentence_bert_config.json). */
  sentenceTransformers?: SentenceTransformersSettings;
}

export interface SentenceTransformersSettings {
  prompts?: { query?: string; passage?: string };
  pooling?: "mean" | "cls";
  maxSeqLength?: number;
}

/** How the profile was found, for /model-info and the load log. */
export interface ProfileRecognition {
  by: "name" | "architecture" | "default";
  /** What matched, in words: which name, or which shape. */
  detail: string;
}

interface BuiltInProfile {
  /** Tested against the lower-cased id, directory basename and config `_name_or_path`. */
  pattern: RegExp;
  profile: ModelProfile;
}

const BUILT_INS: readonly BuiltInProfile[] = [
  {
    // 256 is sentence-transformers' max_seq_length for these models: they were trained on 256 tokens,
    // even though the tokenizer (and position table) allow 512.
    pattern: /(^|[/_-])all-minilm-l(6|12)(-v\d+)?$/,
    profile: {
      name: "minilm",
      passagePrefix: "",
      queryPrefix: "",
      pooling: "mean",
      normalize: true,
      maxTokens: 256,
    },
  },
  {
    // e5 v1/v2 and multilingual-e5; the -instruct variants want an instruction instead, so they fall
    // through to the default profile and need explicit prefixes.
    pattern: /(^|[/_-])(multilingual-)?e5-(small|base|large)(-v2)?$/,
    profile: {
      name: "e5",
      passagePrefix: "passage: ",
      queryPrefix: "query: ",
      pooling: "mean",
      normalize: true,
      maxTokens: 512,
    },
  },
  {
    // BGE v1.5 English: CLS pooling, instruction only on the query side.
    pattern: /(^|[/_-])bge-(small|base|large)-en-v1\.5$/,
    profile: {
      name: "bge-en-v1.5",
      passagePrefix: "",
      queryPrefix: "Represent this sentence for searching relevant passages: ",
      pooling: "cls",
      normalize: true,
      maxTokens: 512,
    },
  },
  {
    // Same shape as multilingual-e5-small (both start from Multilingual-MiniLM-L12-H384), but no
    // prefixes and sentence-transformers' 128 tokens: named here so the shape rule below never
    // mistakes it for e5.
    pattern: /(^|[/_-])paraphrase-multilingual-minilm-l12-v2$/,
    profile: {
      name: "paraphrase-multilingual-minilm",
      passagePrefix: "",
      queryPrefix: "",
      pooling: "mean",
      normalize: true,
      maxTokens: 128,
    },
  },
];

const DEFAULT_PROFILE: ModelProfile = {
  name: "default",
  passagePrefix: "",
  queryPrefix: "",
  pooling: "mean",
  normalize: true,
  maxTokens: 512,
};

/** Last path segment, ignoring trailing slashes and either separator (ids and paths both pass here). */
function lastSegment(value: string): string {
  const trimmed = value.replace(/[/\\]+$/, "");
  const parts = trimmed.split(/[/\\]/);
  return parts[parts.length - 1] ?? trimmed;
}

/** Both XLM-R sentencepiece vocabularies: XLM-R's own (250,002) and the multilingual MiniLM's (250,037). */
const XLMR_VOCAB_SIZES = new Set([250_002, 250_037]);

interface ShapeRule {
  profile: string;
  describe: string;
  matches(evidence: ModelEvidence): boolean;
}

/**
 * Model shapes that identify a built-in profile when no name does (a copy saved under another name
 * without `_name_or_path`). Only shapes no other common embedding model shares: bge-small-en (CLS
 * pooling) has all-MiniLM-L12's shape and multilingual-e5-base paraphrase-multilingual-mpnet's, so
 * those are left to names.
 */
const SHAPE_RULES: readonly ShapeRule[] = [
  {
    profile: "e5",
    describe: "12 layers × 384 with the XLM-R vocabulary: the shape of multilingual-e5-small",
    matches: (e) =>
      (XLMR_VOCAB_SIZES.has(e.vocabSize ?? 0) || /^xlmroberta/i.test(e.tokenizerClass ?? "")) &&
      e.hiddenSize === 384 &&
      e.numHiddenLayers === 12,
  },
  {
    profile: "minilm",
    describe: "6 layers × 384 with the BERT uncased vocabulary: the shape of all-MiniLM-L6",
    matches: (e) => e.vocabSize === 30_522 && e.hiddenSize === 384 && e.numHiddenLayers === 6,
  },
];

function builtIn(name: string): ModelProfile {
  const hit = BUILT_INS.find((b) => b.profile.name === name);
  if (!hit) throw new Error(`no built-in profile ${name}`);
  return hit.profile;
}

/** The built-in profile a name matches, with the name that matched. */
function byName(evidence: ModelEvidence): { profile: ModelProfile; detail: string } | undefined {
  const { modelId, nameOrPath } = evidence;
  const candidates: Array<[string | undefined, string]> = [
    [modelId, "model id"],
    [lastSegment(modelId), "directory name"],
    [nameOrPath, "config.json _name_or_path"],
    [nameOrPath && lastSegment(nameOrPath), "config.json _name_or_path"],
  ];
  for (const [candidate, where] of candidates) {
    if (!candidate) continue;
    const normalised = candidate.toLowerCase().replace(/[/\\]+$/, "");
    const hit = BUILT_INS.find((b) => b.pattern.test(normalised));
    if (hit) return { profile: hit.profile, detail: `${where} ${JSON.stringify(candidate)}` };
  }
  return undefined;
}

/**
 * Picks the profile for a model from what its files say, then applies overrides. A name wins, then the
 * shape; sentence-transformers' own settings (prompts, pooling, max_seq_length) refine either, since
 * they are the model author's statement of how it is used.
 */
export function recogniseProfile(
  evidence: ModelEvidence,
  overrides: ProfileOverrides,
): { profile: ModelProfile; recognition: ProfileRecognition } {
  let base = DEFAULT_PROFILE;
  let recognition: ProfileRecognition = { by: "default", detail: "no known name or shape" };
  const named = byName(evidence);
  const shape = named ? undefined : SHAPE_RULES.find((rule) => rule.matches(evidence));
  if (named) {
    base = named.profile;
    recognition = { by: "name", detail: named.detail };
  } else if (shape) {
    base = builtIn(shape.profile);
    recognition = {
      by: "architecture",
      detail: `${evidence.modelType ?? "model"} of ${shape.describe}`,
    };
  }

  const st = evidence.sentenceTransformers;
  // Empty prompts are what sentence-transformers writes for a model without any: not a statement.
  const stPassage = st?.prompts?.passage || undefined;
  const stQuery = st?.prompts?.query || undefined;
  const stUsed = [
    stPassage !== undefined || stQuery !== undefined ? "prompts" : "",
    st?.pooling ? "pooling" : "",
    st?.maxSeqLength ? "max_seq_length" : "",
  ].filter(Boolean);
  if (stUsed.length > 0) recognition.detail += `; sentence-transformers ${stUsed.join(", ")}`;

  if (
    overrides.maxTokens !== undefined &&
    (!Number.isInteger(overrides.maxTokens) || overrides.maxTokens < 4)
  ) {
    // Fewer than 4 leaves no room for text next to the special tokens; fail at startup, not per batch.
    throw new RangeError(`maxTokens override must be an integer >= 4, got ${overrides.maxTokens}`);
  }

  return {
    profile: {
      name: base.name,
      passagePrefix: overrides.passagePrefix ?? stPassage ?? base.passagePrefix,
      queryPrefix: overrides.queryPrefix ?? stQuery ?? base.queryPrefix,
      pooling: overrides.pooling ?? st?.pooling ?? base.pooling,
      normalize: base.normalize,
      maxTokens: overrides.maxTokens ?? st?.maxSeqLength ?? base.maxTokens,
    },
    recognition,
  };
}

/**
 * The profile for a model known by name only (a hub id, an engine's model name).
 *
 * @param nameOrPath config.json `_name_or_path` when known: a local copy in a renamed directory is
 *   still recognised by it
 */
export function resolveProfile(
  modelId: string,
  nameOrPath: string | undefined,
  overrides: ProfileOverrides,
): ModelProfile {
  return recogniseProfile({ modelId, nameOrPath }, overrides).profile;
}
