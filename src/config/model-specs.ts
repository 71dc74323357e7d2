import { readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import Type, { type Static } from "typebox";
import Value from "typebox/value";

/**
 * EMBEDDING_MODELS: the models one server runs, each in its own embedder process with its own
 * profile and thread budget. A JSON array, or `@path/to/models.json` holding one. The first is the
 * default model (the seed endpoints, /model-info, requests that name no model, new collections).
 */
const MODEL_SPEC_SCHEMA = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 128, pattern: "^[A-Za-z0-9][A-Za-z0-9._:/-]*$" }),
    model: Type.String({ minLength: 1 }),
    dtype: Type.Optional(Type.Union([Type.Literal("q8"), Type.Literal("fp32"), Type.Literal("fp16")])),
    threads: Type.Optional(Type.Integer({ minimum: 1 })),
    sessions: Type.Optional(Type.Integer({ minimum: 0 })),
    passage_prefix: Type.Optional(Type.String()),
    query_prefix: Type.Optional(Type.String()),
    max_tokens: Type.Optional(Type.Integer({ minimum: 8 })),
    pooling: Type.Optional(Type.Union([Type.Literal("mean"), Type.Literal("cls")])),
  },
  { additionalProperties: false },
);
type ModelSpecJson = Static<typeof MODEL_SPEC_SCHEMA>;

/** One served model: where its weights are and the profile it embeds with. */
export interface ModelSpec {
  /**
   * The name clients use (`model` in requests, /v1/models); unset for the single EMBEDDING_MODEL
   * without SERVED_MODEL_NAME: then derived from the loaded model (server/model-names.ts).
   */
  servedName?: string;
  /** Hugging Face id, or a local model directory. */
  model: string;
  dtype: "q8" | "fp32" | "fp16";
  threads: number;
  /** 0 = one session per thread. */
  sessions: number;
  overrides: {
    passagePrefix?: string;
    queryPrefix?: string;
    maxTokens?: number;
    pooling?: "mean" | "cls";
  };
}

export class ModelListError extends Error {
  override name = "ModelListError";
}

/** What a spec inherits when it leaves a field out: the single-model settings. */
export interface ModelDefaults {
  dtype: ModelSpec["dtype"];
  threads: number;
  sessions: number;
  /** Relative model directories are resolved from here. */
  baseDir: string;
}

/** Parses EMBEDDING_MODELS (JSON, or `@file`); throws ModelListError naming what is wrong. */
export function parseModelSpecs(text: string, defaults: ModelDefaults): ModelSpec[] {
  const json = text.trim().startsWith("@") ? readSpecFile(text.trim().slice(1), defaults.baseDir) : text;
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (error) {
    throw new ModelListError(`EMBEDDING_MODELS is not JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(parsed) || parsed.length === 0) {
    throw new ModelListError('EMBEDDING_MODELS must be a non-empty JSON array of {"name","model",...}');
  }
  const specs = parsed.map((entry, index) => toSpec(entry, index, defaults));
  const seen = new Set<string>();
  for (const spec of specs) {
    const key = (spec.servedName ?? "").toLowerCase();
    if (seen.has(key)) throw new ModelListError(`EMBEDDING_MODELS names "${spec.servedName}" twice`);
    seen.add(key);
  }
  return specs;
}

function readSpecFile(path: string, baseDir: string): string {
  try {
    return readFileSync(resolve(baseDir, path), "utf8");
  } catch (error) {
    throw new ModelListError(`EMBEDDING_MODELS file ${path}: ${(error as Error).message}`);
  }
}

function toSpec(entry: unknown, index: number, defaults: ModelDefaults): ModelSpec {
  if (!Value.Check(MODEL_SPEC_SCHEMA, entry)) {
    const problems = [...Value.Errors(MODEL_SPEC_SCHEMA, entry)].map(
      (error) => `${error.instancePath || "/"} ${error.message}`,
    );
    throw new ModelListError(`EMBEDDING_MODELS[${index}]: ${[...new Set(problems)].join("; ")}`);
  }
  const spec: ModelSpecJson = entry;
  const local = spec.model.startsWith(".") || isAbsolute(spec.model);
  return {
    servedName: spec.name,
    model: local ? resolve(defaults.baseDir, spec.model) : spec.model,
    dtype: spec.dtype ?? defaults.dtype,
    threads: spec.threads ?? defaults.threads,
    sessions: spec.sessions ?? defaults.sessions,
    overrides: {
      ...(spec.passage_prefix !== undefined ? { passagePrefix: spec.passage_prefix } : {}),
      ...(spec.query_prefix !== undefined ? { queryPrefix: spec.query_prefix } : {}),
      ...(spec.max_tokens !== undefined ? { maxTokens: spec.max_tokens } : {}),
      ...(spec.pooling !== undefined ? { pooling: spec.pooling } : {}),
    },
  };
}
