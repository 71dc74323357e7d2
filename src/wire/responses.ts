import Type, { type Static, type TSchema } from "typebox";
import { JobCounts } from "../domain/job-counts.js";
import { JobState, Nullable, ReceiptState, Timestamp } from "./shared.js";

/**
 * Response schemas of every route: the server serialises with them (a field not listed here is not
 * sent), the OpenAPI document shows them, and the client SDK's types are their Static types.
 */

export { JobCounts };

/** The envelope of every error answer; `code` is one of the catalog's (domain/errors.ts). */
export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: "Stable error code (see the README's error table)" }),
      message: Type.String(),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
  },
  { description: "Error: a stable code, a message, and details where they help" },
);
export type ErrorBody = Static<typeof ErrorBody>;

const Payload = Type.Record(Type.String(), Type.Unknown(), {
  description: "The payload stored with the vector",
});
/** Objects whose producers may add fields (engine reports): the listed ones are always there. */
const Open = <T extends Record<string, TSchema>>(properties: T, description?: string) =>
  Type.Object(properties, { additionalProperties: true, ...(description ? { description } : {}) });

// --- ingest ---------------------------------------------------------------------------------------

/** 202 of POST /v1/collections/{collection}/chunks */
export const IngestAccepted = Type.Object(
  {
    job_id: Type.String(),
    status: Type.Literal("accepted"),
    count: Type.Integer({ minimum: 0, description: "Chunks accepted" }),
  },
  { description: "Accepted: durable before this answer; follow the job at GET /v1/jobs/{job_id}" },
);
export type IngestAccepted = Static<typeof IngestAccepted>;

/** 202 of PUT /v1/collections/{collection}/documents/{document_id} */
export const DocumentReplaceAccepted = Type.Object(
  { ...IngestAccepted.properties, document_id: Type.String() },
  { description: "Accepted: durable before this answer; the document's other chunks go once it is stored" },
);
export type DocumentReplaceAccepted = Static<typeof DocumentReplaceAccepted>;

/** 202 of POST /test/embed (the seed API) */
export const SeedEmbedAccepted = Type.Object(
  { status: Type.Literal("accepted"), count: Type.Integer({ minimum: 0 }), job_id: Type.String() },
  { description: "Accepted: durable before this answer" },
);
export type SeedEmbedAccepted = Static<typeof SeedEmbedAccepted>;

// --- jobs -----------------------------------------------------------------------------------------

const JobSummaryFields = {
  id: Type.String(),
  collection: Type.String(),
  state: JobState,
  counts: JobCounts,
  created_at: Timestamp(),
  updated_at: Timestamp(),
};

/** One job in GET /v1/jobs. */
export const JobSummary = Type.Object(JobSummaryFields);
export type JobSummary = Static<typeof JobSummary>;

export const JobList = Type.Object(
  { jobs: Type.Array(JobSummary), next_cursor: Nullable(Type.String()) },
  { description: "A page of jobs; pass next_cursor as cursor for the next" },
);
export type JobList = Static<typeof JobList>;

export const ChunkReceipt = Type.Object({
  id: Type.Integer({ description: "Queue sequence number (also the dead-letter id)" }),
  chunk_id: Type.String(),
  state: ReceiptState,
  attempts: Type.Integer({ minimum: 0 }),
  tokens: Nullable(Type.Integer({ description: "Model tokens embedded; null until embedded" })),
  truncated: Type.Boolean(),
  truncated_tokens: Type.Integer({ minimum: 0 }),
  split: Type.Boolean(),
  windows: Nullable(Type.Integer({ description: "Points the chunk became: 1, or its windows when split" })),
  pooled_windows: Nullable(
    Type.Integer({
      description: "For a pooled chunk embedded by this job: how many windows its one vector averages",
    }),
  ),
  overflow: Type.Union([Type.Literal("split"), Type.Literal("truncate"), Type.Literal("pool")]),
  model: Nullable(Type.String()),
  profile: Nullable(Type.String()),
  last_error: Nullable(Type.String()),
  updated_at: Timestamp(),
});
export type ChunkReceipt = Static<typeof ChunkReceipt>;

/** GET /v1/jobs/{id} */
export const Job = Type.Object(
  {
    ...JobSummaryFields,
    failures: Type.Array(
      Type.Object({
        chunk_id: Type.String(),
        state: Type.Literal("dead"),
        reason: Type.String(),
        attempts: Type.Integer({ minimum: 0 }),
      }),
    ),
    chunks: Type.Array(ChunkReceipt),
    next_cursor: Nullable(Type.Integer()),
    replace: Nullable(
      Type.Object(
        {
          documents: Type.Array(Type.String()),
          finalized: Type.Boolean(),
          deleted_points: Type.Integer({ minimum: 0 }),
          deleted_chunk_ids: Type.Array(Type.String()),
        },
        {
          description: "Set for a job that replaces documents: their old points are deleted once it is done",
        },
      ),
    ),
  },
  { description: "The job, its counts, and a page of its chunks" },
);
export type Job = Static<typeof Job>;

/** DELETE /v1/jobs/{id} */
export const JobCancelled = Type.Object(
  {
    id: Type.String(),
    cancelled: Type.Integer({ minimum: 0, description: "Chunks cancelled before they ran" }),
    state: JobState,
    counts: Nullable(JobCounts),
  },
  { description: "What was cancelled; chunks already running or stored are not undone" },
);
export type JobCancelled = Static<typeof JobCancelled>;

// --- dead letters ---------------------------------------------------------------------------------

export const DeadLetter = Type.Object({
  id: Type.Integer(),
  job_id: Type.String(),
  collection: Type.String(),
  chunk_id: Type.String(),
  reason: Type.String(),
  attempts: Type.Integer({ minimum: 0 }),
  dead_at: Timestamp(),
});
export type DeadLetter = Static<typeof DeadLetter>;

export const DeadLetterPage = Type.Object(
  { dead_letters: Type.Array(DeadLetter), next_cursor: Nullable(Type.Integer()) },
  { description: "A page of dead letters; pass next_cursor as after for the next" },
);
export type DeadLetterPage = Static<typeof DeadLetterPage>;

export const DeadLettersReplayed = Type.Object(
  { replayed: Type.Integer({ minimum: 0 }) },
  { description: "Dead letters put back in the queue, attempts reset" },
);
export const DeadLettersDiscarded = Type.Object(
  { discarded: Type.Integer({ minimum: 0 }) },
  { description: "Dead letters discarded" },
);

// --- documents and search -------------------------------------------------------------------------

export const DocumentList = Type.Object(
  { documents: Type.Array(Type.String()), next_cursor: Nullable(Type.String()) },
  { description: "A page of the collection's document ids; pass next_cursor as after for the next" },
);
export type DocumentList = Static<typeof DocumentList>;

export const DocumentDeleted = Type.Object(
  {
    document_id: Type.String(),
    deleted: Type.Integer({ minimum: 0, description: "Points deleted" }),
    chunk_ids: Type.Array(Type.String()),
  },
  { description: "The document's points are deleted; its queued chunks are cancelled" },
);
export type DocumentDeleted = Static<typeof DocumentDeleted>;

export const SearchHit = Type.Object({
  id: Type.String({ description: "The chunk id (a window's: `<chunk id>#<index>`)" }),
  point_id: Type.String(),
  score: Type.Number(),
  payload: Payload,
  parent_text: Type.Optional(
    Nullable(
      Type.String({
        description: "With include_parent_text, for a window of a split chunk: the chunk's whole text",
      }),
    ),
  ),
});
export type SearchHit = Static<typeof SearchHit>;

export const SearchResult = Type.Object(
  {
    hits: Type.Array(SearchHit),
    pending: Type.Optional(
      Type.Integer({
        minimum: 1,
        description: "Chunks of the collection still queued (they may be the ones sought); absent when none",
      }),
    ),
  },
  { description: "Hits, best first" },
);
export type SearchResult = Static<typeof SearchResult>;

// --- status ---------------------------------------------------------------------------------------

export const BackendReport = Type.Object({
  ok: Type.Boolean(),
  failing_since: Type.Optional(Timestamp("Since when requests to it have failed")),
  error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() })),
});
export type BackendReport = Static<typeof BackendReport>;

/** GET /v1/status */
export const ServerStatus = Type.Object(
  {
    queue: Type.Object({
      pending_chunks: Type.Integer({ minimum: 0 }),
      running_chunks: Type.Integer({ minimum: 0 }),
      pending_tokens_estimate: Type.Number({ minimum: 0 }),
      max_queue_size: Type.Integer(),
      available: Type.Boolean({ description: "Room for more: below MAX_QUEUE_SIZE and storage ok" }),
      storage: Type.Object({
        ok: Type.Boolean(),
        free_bytes: Type.Optional(
          Type.Number({ description: "Bytes left, where they can be measured (SQLite)" }),
        ),
        problem: Type.Optional(Type.String()),
      }),
    }),
    backends: Type.Object(
      { queue: BackendReport, store: BackendReport },
      { description: "What requests have seen of the queue and the store lately" },
    ),
    dead_letters: Type.Integer({ minimum: 0 }),
    throughput: Type.Object({ chunks_per_second: Type.Number(), tokens_per_second: Type.Number() }),
    estimated_drain_seconds: Nullable(Type.Integer()),
    model: Type.Union(
      [
        Type.Object({
          id: Type.String({ description: "Where the weights were loaded from" }),
          name: Type.String({ description: "What OpenAI clients call it (GET /v1/models)" }),
          dimension: Type.Integer(),
          ready: Type.Literal(true),
        }),
        Type.Object({ ready: Type.Literal(false) }),
      ],
      { description: "The served model, or ready: false while it loads" },
    ),
    embedder: Open(
      {
        engine: Type.Union([Type.Literal("local"), Type.Literal("remote")]),
        state: Type.Optional(
          Type.Union([
            Type.Literal("starting"),
            Type.Literal("ok"),
            Type.Literal("rate_limited"),
            Type.Literal("unavailable"),
          ]),
        ),
        last_error: Type.Optional(Nullable(Type.String())),
        last_error_at: Type.Optional(Nullable(Timestamp())),
        failing_since: Type.Optional(Nullable(Timestamp())),
      },
      "The engine behind the embedder; a remote one adds its protocol, latency, rate and limits",
    ),
    durability: Open(
      {
        queue: Type.Union([Type.Literal("sqlite"), Type.Literal("redis")]),
        verified: Type.Boolean(),
        severity: Type.Union([Type.Literal("ok"), Type.Literal("warning"), Type.Literal("error")]),
        problems: Type.Array(Type.String()),
        source: Type.Optional(
          Type.Union([Type.Literal("config"), Type.Literal("info"), Type.Literal("none")]),
        ),
        maxmemory_policy: Type.Optional(Nullable(Type.String())),
        appendonly: Type.Optional(Nullable(Type.String())),
        appendfsync: Type.Optional(Nullable(Type.String())),
        checked_at: Type.Optional(Timestamp()),
      },
      "Whether the queue's engine keeps what it accepted (Redis settings checked at start-up)",
    ),
  },
  { description: "Queue depth, backends, throughput, model, embedder and durability" },
);
export type ServerStatus = Static<typeof ServerStatus>;

/** GET /v1/status/history */
export const StatusHistory = Type.Object(
  {
    interval_ms: Type.Integer(),
    samples: Type.Array(
      Type.Object({
        t: Type.Integer({ description: "epoch milliseconds" }),
        pending_chunks: Type.Integer(),
        running_chunks: Type.Integer(),
        pending_tokens_estimate: Type.Number(),
        chunks_per_second: Type.Number(),
        tokens_per_second: Type.Number(),
      }),
    ),
  },
  { description: "One sample a second, oldest first" },
);
export type StatusHistory = Static<typeof StatusHistory>;

/** GET /health */
export const Health = Type.Object({ status: Type.Literal("ok") }, { description: "The process answers" });

/** GET /ready */
export const Ready = Type.Object(
  { status: Type.Literal("ready"), model: Type.String(), queue: BackendReport, store: BackendReport },
  { description: "The model is loaded and the queue and the store answer" },
);
export type Ready = Static<typeof Ready>;

/** GET /health of a worker (WORKER_PORT) */
export const WorkerHealth = Type.Object(
  { status: Type.Literal("ok"), role: Type.Literal("worker") },
  { description: "The worker process answers" },
);

/** GET /ready of a worker (WORKER_PORT) */
export const WorkerReady = Type.Object(
  { status: Type.Literal("ready"), role: Type.Literal("worker"), model: Type.String() },
  { description: "The model is loaded and the worker takes work" },
);

// --- the seed API ---------------------------------------------------------------------------------

/** GET /test/status */
export const SeedStatus = Type.Object(
  {
    current_task_queue_size: Type.Integer({ minimum: 0 }),
    max_queue_size: Type.Integer(),
    queue_available: Type.Boolean({ description: "current_task_queue_size < threshold × max_queue_size" }),
    threshold_ratio: Type.Number(),
  },
  { description: "The queue's depth against the threshold" },
);
export type SeedStatus = Static<typeof SeedStatus>;

/** GET /model-info */
export const ModelDescription = Type.Object(
  {
    model_name: Type.String({ description: "The name clients use (SERVED_MODEL_NAME)" }),
    model_source: Type.String({ description: "Where the weights were loaded from (hub id or directory)" }),
    profile: Type.String(),
    profile_source: Nullable(
      Type.Object({
        by: Type.Union([Type.Literal("name"), Type.Literal("architecture"), Type.Literal("default")]),
        detail: Type.String(),
      }),
    ),
    dimension: Type.Integer(),
    max_tokens: Type.Integer(),
    pooling: Type.Union([Type.Literal("mean"), Type.Literal("cls")]),
    normalize: Type.Boolean(),
    dtype: Type.String(),
    prefixes: Type.Object({ passage: Type.String(), query: Type.String() }),
    weights_sha256: Nullable(
      Type.String({ description: "sha256 of the ONNX weights; null when not known (remote)" }),
    ),
    fingerprint: Type.String({
      description:
        "The profile's fingerprint: collections bound to another one refuse this model's chunks (409 model_mismatch)",
    }),
    distance: Type.Union([Type.Literal("Cosine"), Type.Literal("Euclid"), Type.Literal("Dot")]),
    token_counter: Type.Union([Type.Literal("tokenizer"), Type.Literal("estimate")], {
      description: "Who counts tokens against max_tokens: the model's tokenizer, or an estimate (remote)",
    }),
    remote: Type.Optional(
      Type.Object({
        protocol: Type.Union([Type.Literal("openai"), Type.Literal("tei")]),
        url: Type.String(),
        model: Type.String(),
      }),
    ),
  },
  { description: "The loaded model" },
);
export type ModelDescription = Static<typeof ModelDescription>;

// --- collections ----------------------------------------------------------------------------------

/** A collection's embedding binding (domain/model-binding.ts), as GET /v1/collections/{collection} shows it. */
export const CollectionBinding = Type.Object(
  {
    model: Type.String({
      description: "The model's name: hub id (or a local export's origin), else directory name",
    }),
    source: Type.String({ description: "Where the binding's model was loaded from, when it was recorded" }),
    weights_sha256: Nullable(
      Type.String({ description: "sha256 of the ONNX weights; null when not known (remote)" }),
    ),
    dtype: Type.String(),
    pooling: Type.Union([Type.Literal("mean"), Type.Literal("cls")]),
    normalize: Type.Boolean(),
    prefixes: Type.Object({ passage: Type.String(), query: Type.String() }),
    max_tokens: Type.Integer(),
    dimension: Type.Integer(),
    fingerprint: Type.String({
      description: "12 hex of sha256 of the canonical profile; every point carries it",
    }),
    bound_at: Nullable(Timestamp("When the binding was recorded")),
    adopted: Type.Boolean({
      description:
        "The collection existed before bindings and was bound to the model that used it first since",
    }),
  },
  { description: "The embedding profile the collection's vectors come from" },
);
export type CollectionBinding = Static<typeof CollectionBinding>;

/** 200 of GET /v1/collections/{collection} */
export const CollectionInfo = Type.Object(
  {
    name: Type.String(),
    dimension: Type.Integer(),
    distance: Type.Union([Type.Literal("Cosine"), Type.Literal("Euclid"), Type.Literal("Dot")]),
    points: Type.Integer({ minimum: 0, description: "Points stored (a split chunk has one per window)" }),
    binding: Nullable(CollectionBinding),
    model_matches: Nullable(
      Type.Boolean({
        description:
          "Whether the server's model has the binding's profile (ingest answers 409 model_mismatch when not); null while the model loads or when the collection has no binding yet",
      }),
    ),
    active_version: Type.Optional(
      Type.String({
        description:
          "The version the collection's name reaches (the name itself is version 1; later ones are <name>__v<N>); absent when the store keeps no versions",
      }),
    ),
    next_version: Type.Optional(
      Nullable(
        Type.String({
          description:
            "The version a re-embed builds (or built), which POST .../cutover would switch to; null when there is none",
        }),
      ),
    ),
  },
  { description: "A collection: its shape, its size and the model it is bound to" },
);
export type CollectionInfo = Static<typeof CollectionInfo>;

// --- OpenAI-compatible ----------------------------------------------------------------------------

export const EmbeddingsResponse = Type.Object(
  {
    object: Type.Literal("list"),
    data: Type.Array(
      Type.Object({
        object: Type.Literal("embedding"),
        index: Type.Integer(),
        embedding: Type.Union([Type.Array(Type.Number()), Type.String()], {
          description: "Numbers (float), or little-endian float32 bytes in base64 (base64)",
        }),
      }),
    ),
    model: Type.String({ description: "The served name" }),
    usage: Type.Object({ prompt_tokens: Type.Integer(), total_tokens: Type.Integer() }),
  },
  { description: "One vector per input, in the input's order" },
);
export type EmbeddingsResponse = Static<typeof EmbeddingsResponse>;

export const ModelObject = Type.Object({
  id: Type.String(),
  object: Type.Literal("model"),
  created: Type.Integer(),
  owned_by: Type.String(),
});

export const ModelList = Type.Object(
  { object: Type.Literal("list"), data: Type.Array(ModelObject) },
  { description: "The served model under the name OpenAI clients use" },
);
export type ModelList = Static<typeof ModelList>;

// --- collection versions (re-embedding) ---------------------------------------------------------

/** 202 of POST /v1/collections/{collection}/reembed */
export const ReembedAccepted = Type.Object(
  {
    ...IngestAccepted.properties,
    collection: Type.String(),
    from_version: Type.String({ description: "The version read (the one the collection's name reaches)" }),
    to_version: Type.String({ description: "The version built, bound to the server's model" }),
    skipped: Type.Integer({ minimum: 0, description: "Stored chunks whose text could not be read back" }),
    duplicate: Type.Boolean({ description: "This re-embed was already queued: its job is returned" }),
  },
  { description: "Accepted: durable before this answer; follow the job at GET /v1/jobs/{job_id}" },
);
export type ReembedAccepted = Static<typeof ReembedAccepted>;

/** Answer of POST /v1/collections/{collection}/cutover and .../rollback */
export const VersionSwap = Type.Object(
  {
    collection: Type.String(),
    active_version: Type.String({ description: "The version the collection's name reaches now" }),
    previous_version: Type.String({ description: "The version it reached before (kept)" }),
  },
  { description: "The collection's name was moved to another version in one atomic step" },
);
export type VersionSwap = Static<typeof VersionSwap>;

/** What a cutover check found: the overlap of each sample query's answers in the two versions. */
export const CutoverCheckReport = Type.Object(
  {
    top_k: Type.Integer({ minimum: 1 }),
    min_overlap: Type.Number(),
    mean_overlap: Type.Number({ description: "The mean of the per-query overlaps" }),
    passed: Type.Boolean({ description: "mean_overlap >= min_overlap: the cutover happened" }),
    queries: Type.Array(
      Type.Object({
        query: Type.String(),
        overlap: Type.Number({
          description:
            "|A∩B| / top_k over the distinct chunk ids each version answers (a window counts as its chunk)",
        }),
      }),
    ),
  },
  {
    description: "Compared answers of the active version and the next one, each searched with its own model",
  },
);
export type CutoverCheckReport = Static<typeof CutoverCheckReport>;

/** Answer of POST /v1/collections/{collection}/cutover */
export const CutoverDone = Type.Object(
  { ...VersionSwap.properties, check: Type.Optional(CutoverCheckReport) },
  { description: "The collection's name now reaches its next version; `check` when one was asked for" },
);
export type CutoverDone = Static<typeof CutoverDone>;

/** One version in GET /v1/collections/{collection}/versions */
export const CollectionVersion = Type.Object({
  version: Type.Integer({ minimum: 1 }),
  name: Type.String({ description: "Its own name: the collection's for version 1, else <name>__v<N>" }),
  active: Type.Boolean({ description: "The collection's name reaches it (search, ingest)" }),
  next: Type.Boolean({
    description: "The version after the active one: what POST .../cutover would switch to",
  }),
  dimension: Type.Integer(),
  distance: Type.Union([Type.Literal("Cosine"), Type.Literal("Euclid"), Type.Literal("Dot")]),
  points: Type.Integer({ minimum: 0 }),
  binding: Nullable(CollectionBinding),
  model_served: Type.Boolean({
    description: "This server serves the binding's model (a cutover check can embed queries for it)",
  }),
  reembed_job_id: Nullable(
    Type.String({ description: "The job that re-embedded into it (versions >= 2), if known" }),
  ),
  pending_chunks: Type.Integer({
    minimum: 0,
    description: "Chunks queued for it and not stored yet: it cannot be deleted while there are any",
  }),
});
export type CollectionVersion = Static<typeof CollectionVersion>;

/** 200 of GET /v1/collections/{collection}/versions */
export const CollectionVersions = Type.Object(
  {
    collection: Type.String(),
    active_version: Type.String({ description: "The version the collection's name reaches" }),
    versions: Type.Array(CollectionVersion, { description: "The versions that exist, by number" }),
  },
  { description: "The versions of a collection (blue/green re-embedding)" },
);
export type CollectionVersions = Static<typeof CollectionVersions>;

/** 200 of DELETE /v1/collections/{collection}/versions/{version} */
export const VersionDeleted = Type.Object(
  {
    collection: Type.String(),
    version: Type.Integer({ minimum: 1 }),
    name: Type.String({ description: "The deleted version's own name" }),
    deleted_points: Type.Integer({ minimum: 0 }),
    binding: Nullable(CollectionBinding),
    active_version: Type.String({ description: "The version the collection's name reaches (unchanged)" }),
  },
  { description: "The version, its points and its binding are gone; the collection's name is unaffected" },
);
export type VersionDeleted = Static<typeof VersionDeleted>;
