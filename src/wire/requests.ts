import Type, { type Static } from "typebox";
import type { ErrorCode } from "../domain/errors.js";
import { JobState, ReceiptState, SafeInteger } from "./shared.js";

/**
 * Request schemas: they validate requests and generate the OpenAPI document, so every rule a request
 * must follow that a schema can state is stated here (clients and fuzzers read it); checks a schema
 * cannot state (unique chunk ids, queue capacity, token counts) are made by the handlers. The client
 * SDK's request types are these schemas' Static types.
 */

/**
 * Annotations a schema node may carry to shape the error its failure gives (read by the server's
 * server/validation-problems.ts): the stable code and the message.
 */
export function refusal(code: ErrorCode, message: string): Record<string, string> {
  return { "x-error-code": code, "x-error-message": message };
}

/**
 * Text with something to embed: at least one character that is not white space. The set is spelled
 * out (JavaScript's white space: what String.prototype.trim removes) instead of `\S`, whose meaning
 * differs between regex engines (Python's does not count U+FEFF), so clients that check the pattern
 * agree with the server.
 */
const NON_BLANK =
  "[^\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff]";

const ChunkId = Type.Union([Type.String({ minLength: 1, maxLength: 512 }), SafeInteger({ minimum: 0 })]);
const JsonObject = Type.Record(Type.String(), Type.Unknown());

export const CollectionParams = Type.Object({
  collection: Type.String({ pattern: "^[A-Za-z0-9_-]{1,64}$" }),
});

const EmbeddableText = (description: string) =>
  Type.String({
    pattern: NON_BLANK,
    description,
    ...refusal("empty_text", "has nothing to embed (empty or only white space)"),
  });

/** A request's chunks: at least one (an empty request is a client bug worth its own code). */
const Chunks = <T extends Parameters<typeof Type.Array>[0]>(chunk: T) =>
  Type.Array(chunk, { minItems: 1, ...refusal("empty_batch", "has no chunks") });

export const SeedChunk = Type.Object({
  chunk_id: ChunkId,
  item_sequence: Type.Union([Type.String({ maxLength: 512 }), SafeInteger()]),
  name: Type.String(),
  contents: EmbeddableText("Embedded as name + ' | ' + contents"),
  meta: Type.Union([JsonObject, Type.Null()]),
});
export type SeedChunk = Static<typeof SeedChunk>;

/** The seed API takes a bare array; a documented variant wraps it in {"chunks": [...]}. */
export const SeedEmbedBody = Type.Union([Chunks(SeedChunk), Type.Object({ chunks: Chunks(SeedChunk) })]);
export type SeedEmbedBody = Static<typeof SeedEmbedBody>;

const OverflowPolicy = Type.Union(
  [Type.Literal("split"), Type.Literal("truncate"), Type.Literal("reject"), Type.Literal("pool")],
  {
    description:
      "What to do with text over the model's token limit (default: the server's OVERFLOW_POLICY): split into windows (one point each), truncate, reject (422), or pool (one point, the normalised mean of its windows' vectors)",
  },
);
const OverlapTokens = Type.Integer({
  minimum: 0,
  maximum: 4096,
  description: "Tokens shared by consecutive windows",
});

/** The seed body is a bare array, so its options travel in the query string. */
export const SeedEmbedQuery = Type.Object({
  overflow: Type.Optional(OverflowPolicy),
  overlap_tokens: Type.Optional(OverlapTokens),
  replace_documents: Type.Optional(
    Type.Boolean({
      description:
        "The request holds the full chunk set of each document (item_sequence) in it: chunks of those documents not in it are deleted once it is stored",
    }),
  ),
});

export const SeedStatusQuery = Type.Object({
  threshold: Type.Optional(Type.Number({ minimum: 0, maximum: 1, default: 0.7 })),
});

export const NativeChunk = Type.Object({
  id: ChunkId,
  text: EmbeddableText("The text to embed"),
  document_id: Type.Optional(Type.Union([Type.String({ maxLength: 512 }), SafeInteger(), Type.Null()])),
  metadata: Type.Optional(Type.Union([JsonObject, Type.Null()])),
});
export type NativeChunk = Static<typeof NativeChunk>;

/** A served model's name (GET /v1/models), as requests name it. */
export const ModelName = Type.String({
  minLength: 1,
  maxLength: 256,
  description:
    "A served model (GET /v1/models); default: the collection's own model, else the server's default",
});

export const NativeIngestBody = Type.Object({
  chunks: Chunks(NativeChunk),
  overflow: Type.Optional(OverflowPolicy),
  overlap_tokens: Type.Optional(OverlapTokens),
  model: Type.Optional(ModelName),
});
export type NativeIngestBody = Static<typeof NativeIngestBody>;

/**
 * Headers of the ingest routes. A client that retries a POST after a lost answer sends the same
 * Idempotency-Key: the retry returns the job the first attempt created and queues nothing again.
 */
export const IngestHeaders = Type.Object({
  "idempotency-key": Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 255,
      pattern: "^[\\x21-\\x7E]+$",
      description:
        "Any printable ASCII string without spaces, unique per request (e.g. a UUID); a repeat within JOB_RETENTION returns the first request's job",
    }),
  ),
});

export const JobParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });

const PageQuery = {
  after: Type.Optional(SafeInteger({ minimum: 0, description: "Cursor: next_cursor of the previous page" })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
};
export const JobQuery = Type.Object({ state: Type.Optional(ReceiptState), ...PageQuery });
export const DeadLetterQuery = Type.Object({
  job_id: Type.Optional(Type.String({ minLength: 1 })),
  ...PageQuery,
});

/**
 * Which dead letters to replay or discard: exactly one of all / job_id / ids, so a typo can never
 * widen a replay or a discard to everything.
 */
export const DeadLetterSelectorBody = Type.Union(
  [
    Type.Object({ all: Type.Literal(true) }, { additionalProperties: false }),
    Type.Object({ job_id: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false }),
    Type.Object(
      { ids: Type.Array(SafeInteger({ minimum: 1 }), { minItems: 1, maxItems: 10_000 }) },
      { additionalProperties: false },
    ),
  ],
  {
    description: 'Exactly one of {"all": true}, {"job_id": "..."} or {"ids": [...]}',
    "x-error-message": 'must have exactly one of "all": true, "job_id" or "ids"',
  },
);
export type DeadLetterSelectorBody = Static<typeof DeadLetterSelectorBody>;

const FilterValue = Type.Union([Type.String({ maxLength: 1024 }), Type.Number(), Type.Boolean()]);
export const SearchBody = Type.Object({
  // Something to embed: a blank query is refused like a blank chunk.
  query: Type.String({
    pattern: NON_BLANK,
    "x-error-message": "has nothing to embed (empty or only white space)",
  }),
  top_k: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 10 })),
  include_parent_text: Type.Optional(
    Type.Boolean({
      default: false,
      description:
        "Give every hit that is a window of a split chunk its chunk's whole text as parent_text (windows store only their own text)",
    }),
  ),
  filter: Type.Optional(
    Type.Record(
      Type.String({ minLength: 1, maxLength: 256 }),
      Type.Union([FilterValue, Type.Array(FilterValue, { maxItems: 1024 })]),
      {
        maxProperties: 32,
        description:
          "AND of payload equalities (at most 32 keys); an array matches any of its values (at most 1,024)",
      },
    ),
  ),
});
export type SearchBody = Static<typeof SearchBody>;

export const DocumentListQuery = Type.Object({
  after: Type.Optional(Type.String({ maxLength: 512, description: "next_cursor of the previous page" })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 1000 })),
});

export const DocumentParams = Type.Object({
  collection: Type.String({ pattern: "^[A-Za-z0-9_-]{1,64}$" }),
  document_id: Type.String({ minLength: 1, maxLength: 512 }),
});

/** POST /v1/embeddings: OpenAI's request, kept so OpenAI clients validate, plus `overflow`. */
/** Inputs one POST /v1/embeddings may carry (OpenAI's own limit). */
export const MAX_EMBEDDING_INPUTS = 2048;
const MAX_INPUTS = MAX_EMBEDDING_INPUTS;

export const EmbeddingsBody = Type.Object({
  input: Type.Union(
    [
      Type.String(),
      Type.Array(Type.String(), { minItems: 1, maxItems: MAX_INPUTS }),
      Type.Array(Type.Integer()),
      Type.Array(Type.Array(Type.Integer())),
    ],
    {
      description: `A text or an array of up to ${MAX_INPUTS} texts. Token arrays (OpenAI's pre-tokenized input) are refused with 400: this server tokenizes with its own model's tokenizer.`,
    },
  ),
  model: Type.String({
    minLength: 1,
    description:
      "The served model: its name in GET /v1/models (SERVED_MODEL_NAME), or its hub id, or either's base name (e.g. all-MiniLM-L6-v2). Any other model is 404 model_not_found.",
  }),
  encoding_format: Type.Optional(
    Type.Union([Type.Literal("float"), Type.Literal("base64")], {
      default: "float",
      description: "float: arrays of numbers; base64: little-endian float32 bytes, base64-encoded",
    }),
  ),
  dimensions: Type.Optional(
    Type.Integer({
      minimum: 1,
      description: "Must equal the model's dimension if given (vectors are never shortened)",
    }),
  ),
  user: Type.Optional(Type.String({ description: "Accepted and ignored" })),
  overflow: Type.Optional(
    Type.Union([Type.Literal("truncate"), Type.Literal("reject")], {
      description:
        "Not in OpenAI's API. Input over the model's token limit: reject (422 text_too_long) or truncate to the limit. Default: truncate if the server's OVERFLOW_POLICY is truncate, else reject (one input cannot answer with several vectors, so split means reject here).",
    }),
  ),
});
export type EmbeddingsBody = Static<typeof EmbeddingsBody>;

/** GET /v1/jobs */
export const JobListQuery = Type.Object({
  state: Type.Optional(JobState),
  collection: Type.Optional(Type.String({ pattern: "^[A-Za-z0-9_-]{1,64}$" })),
  cursor: Type.Optional(Type.String({ maxLength: 512, description: "next_cursor of the previous page" })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 20 })),
});

/** Body of POST /v1/collections/{collection}/reembed */
export const ReembedBody = Type.Object({
  model: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 512,
      description: "The served model to re-embed with (GET /v1/models; default: the server's default model)",
    }),
  ),
});
export type ReembedBody = Static<typeof ReembedBody>;

/** Sample queries a cutover check runs at most: each is embedded twice and searched in two versions. */
export const MAX_CHECK_QUERIES = 100;

/** `check` of POST /v1/collections/{collection}/cutover */
export const CutoverCheck = Type.Object(
  {
    queries: Type.Array(
      Type.String({
        pattern: NON_BLANK,
        maxLength: 8192,
        "x-error-message": "has nothing to embed (empty or only white space)",
      }),
      {
        minItems: 1,
        maxItems: MAX_CHECK_QUERIES,
        description: `Sample queries (1 to ${MAX_CHECK_QUERIES}), each searched in the active and the next version`,
      },
    ),
    top_k: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 1000, default: 10, description: "Hits compared per query" }),
    ),
    min_overlap: Type.Number({
      minimum: 0,
      maximum: 1,
      description:
        "The mean over the queries of |A∩B| / top_k (A, B: the chunk ids each version answers) must reach this for the cutover to happen",
    }),
  },
  { additionalProperties: false },
);
export type CutoverCheck = Static<typeof CutoverCheck>;

/** Body of POST /v1/collections/{collection}/cutover (optional: none is `{}`, no check) */
export const CutoverBody = Type.Object({
  check: Type.Optional(CutoverCheck),
});
export type CutoverBody = Static<typeof CutoverBody>;

/** DELETE /v1/collections/{collection}/versions/{version} */
export const VersionParams = Type.Object({
  collection: Type.String({ pattern: "^[A-Za-z0-9_-]{1,64}$" }),
  version: Type.Integer({
    minimum: 1,
    maximum: 1_000_000,
    description: "The version's number: 1 is the collection under its own name, N >= 2 is <name>__v<N>",
  }),
});
export type VersionParams = Static<typeof VersionParams>;
