/**
 * Model profiles: what a model needs around the raw text (prefixes), how its token vectors become one
 * vector (pooling, normalisation) and how many tokens it was trained on. Getting any of these wrong
 * gives plausible-looking but worse vectors, so well-known models are recognised by name.
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

/**
 * Picks the profile for a model and applies overrides.
 *
 * @param modelId hub id or local directory as configured
 * @param nameOrPath config.json `_name_or_path` when known: a local copy in a renamed directory is
 *   still recognised by it
 */
export function resolveProfile(
  modelId: string,
  nameOrPath: string | undefined,
  overrides: ProfileOverrides,
): ModelProfile {
  const candidates = [modelId, lastSegment(modelId), nameOrPath, nameOrPath && lastSegment(nameOrPath)]
    .filter((c): c is string => typeof c === "string" && c.length > 0)
    .map((c) => c.toLowerCase().replace(/[/\\]+$/, ""));

  let base = DEFAULT_PROFILE;
  for (const candidate of candidates) {
    const hit = BUILT_INS.find((b) => b.pattern.test(candidate));
    if (hit) {
      base = hit.profile;
      break;
    }
  }

  if (
    overrides.maxTokens !== undefined &&
    (!Number.isInteger(overrides.maxTokens) || overrides.maxTokens < 4)
  ) {
    // Fewer than 4 leaves no room for text next to the special tokens; fail at startup, not per batch.
    throw new RangeError(`maxTokens override must be an integer >= 4, got ${overrides.maxTokens}`);
  }

  return {
    name: base.name,
    passagePrefix: overrides.passagePrefix ?? base.passagePrefix,
    queryPrefix: overrides.queryPrefix ?? base.queryPrefix,
    pooling: overrides.pooling ?? base.pooling,
    normalize: base.normalize,
    maxTokens: overrides.maxTokens ?? base.maxTokens,
  };
}
