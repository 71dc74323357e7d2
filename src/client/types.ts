/**
 * Request and response types of the HTTP API: the Static types of the schemas the server validates,
 * serialises and documents with (src/wire/), so the SDK and the server cannot disagree. Type-only
 * imports: the SDK loads none of them at run time.
 */
import type { Static } from "typebox";
import type { ErrorCode } from "../domain/errors.js";
import type {
  CutoverCheck,
  DeadLetterQuery,
  DeadLetterSelectorBody,
  EmbeddingsBody,
  JobQuery,
  NativeChunk,
  NativeIngestBody,
  SearchBody,
  SeedChunk,
} from "../wire/requests.js";
import type {
  ChunkReceipt,
  CollectionBinding,
  CollectionInfo,
  CollectionVersions,
  CutoverDone,
  DeadLetter,
  DeadLetterPage,
  DocumentDeleted,
  DocumentList,
  DocumentReplaceAccepted,
  EmbeddingsResponse,
  ErrorBody,
  IngestAccepted,
  Job,
  JobCancelled,
  JobCounts,
  JobList,
  JobSummary,
  ModelDescription,
  ModelList,
  Ready,
  ReembedAccepted,
  SearchHit,
  SearchResult,
  SeedStatus,
  ServerStatus,
  StatusHistory,
  VersionDeleted,
  VersionSwap,
} from "../wire/responses.js";

export type {
  ChunkReceipt,
  CollectionBinding,
  CollectionInfo,
  CollectionVersions,
  CutoverCheck,
  CutoverDone,
  DeadLetter,
  DeadLetterPage,
  DeadLetterSelectorBody,
  DocumentDeleted,
  DocumentList,
  DocumentReplaceAccepted,
  EmbeddingsBody,
  EmbeddingsResponse,
  ErrorBody,
  ErrorCode,
  IngestAccepted,
  Job,
  JobCancelled,
  JobCounts,
  JobList,
  JobSummary,
  ModelDescription,
  ModelList,
  NativeChunk,
  NativeIngestBody,
  Ready,
  ReembedAccepted,
  SearchBody,
  SearchHit,
  SearchResult,
  SeedChunk,
  SeedStatus,
  ServerStatus,
  StatusHistory,
  VersionDeleted,
  VersionSwap,
};

/** A chunk for `ingest`: `{id, text, document_id?, metadata?}`. */
export type Chunk = NativeChunk;
export type OverflowPolicy = NonNullable<NativeIngestBody["overflow"]>;
export type SearchFilter = NonNullable<SearchBody["filter"]>;
export type DeadLetterSelector = DeadLetterSelectorBody;
export type JobQueryOptions = Static<typeof JobQuery>;
export type DeadLetterQueryOptions = Static<typeof DeadLetterQuery>;

/** POST /v1/embeddings with `encoding_format: "float"` (what the SDK asks for): vectors as numbers. */
export type EmbeddingsResult = Omit<EmbeddingsResponse, "data"> & {
  data: Array<Omit<EmbeddingsResponse["data"][number], "embedding"> & { embedding: number[] }>;
};
