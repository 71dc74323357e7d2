import { randomUUID } from "node:crypto";
import { AppError } from "../domain/errors.js";
import { idempotentJobId } from "../domain/ids.js";
import type { ModelInfo, NewChunk, OverflowPolicy, Payload } from "../domain/types.js";
import type { Embedder } from "../embedder/embedder.js";
import type { ServedModel } from "../embedder/model-roster.js";
import type { ThroughputSource } from "../observability/throughput-meter.js";
import type { JobQueue } from "../queue/job-queue.js";
import type { CollectionRoute } from "./collection-bindings.js";
import { maxChunkTokens, overlongTexts, queueTokenEstimate, surelyFits } from "./token-limits.js";

export interface AdmissionOptions {
  maxQueueSize: number;
  maxQueueTokens: number;
  maxChunksPerRequest: number;
  /** Windows one chunk may become under the split and pool policies (MAX_WINDOWS_PER_CHUNK). */
  maxWindowsPerChunk: number;
}

/** A model as admission uses it: to count the tokens of texts that may be over its limits. */
interface TokenCounter {
  embedder: Pick<Embedder, "countTokens">;
  /** Null while it loads. */
  info: ModelInfo | null;
}

/** A chunk from a request, before the request's overflow policy is attached. */
export type ClientChunk = Omit<NewChunk, "overflow">;

export interface OverflowRequest {
  policy: OverflowPolicy;
  overlapTokens: number;
}

export interface Admitted {
  jobId: string;
  count: number;
  /** The request repeated an Idempotency-Key: this is the job the first one created. */
  duplicate: boolean;
}

/**
 * Turns validated request chunks into queue entries, all or nothing. Semantic checks that a JSON
 * schema cannot express (non-blank text, unique ids within the request, a collection bound to the
 * server's model) are made here, before the queue is touched, so a refused request changes nothing.
 */
export class Admission {
  constructor(
    private readonly queue: Pick<JobQueue, "enqueue">,
    private readonly throughput: ThroughputSource,
    /** Asked only to count texts that may be over a limit. */
    private readonly embedder: Pick<Embedder, "countTokens">,
    private readonly model: () => ModelInfo | null,
    private readonly options: AdmissionOptions,
    /** The collection's binding to its model (CollectionBindings): refused before anything is queued. */
    private readonly bindings: {
      /** Where to queue (a re-embedding's next version, a copy for it too), with which model; or refuses. */
      route(
        collection: string,
        defaultModel: ModelInfo | null,
        requested?: ServedModel,
      ): Promise<CollectionRoute>;
      forget?(collection: string): void;
    },
  ) {}

  /** Collections whose re-embed is being set up: their admissions wait (see `rerouting`). */
  private readonly rerouted = new Map<string, Promise<unknown>>();

  /** The name now reaches another version of the collection (cutover, rollback): read its binding again. */
  forgetCollection(collection: string): void {
    this.bindings.forget?.(collection);
  }

  /**
   * Runs `change` (a re-embed creating the collection's next version) while this process admits
   * nothing into `collection`: a request routed before the change would miss the new version. The
   * binding is read again afterwards. Other API processes see the change within a second.
   */
  async rerouting<T>(collection: string, change: () => Promise<T>): Promise<T> {
    while (this.rerouted.has(collection)) await this.rerouted.get(collection)?.catch(() => {});
    const running = change().finally(() => {
      this.rerouted.delete(collection);
      this.bindings.forget?.(collection);
    });
    this.rerouted.set(collection, running);
    return running;
  }

  async admit(
    requested: string,
    clientChunks: ClientChunk[],
    overflow: OverflowRequest,
    options: {
      idempotencyKey?: string;
      /** The request is the full chunk set of these documents (see JobQueue's EnqueueRequest). */
      replaceDocuments?: string[];
      /** The model the request names (`model`); the collection's (or the default) when absent. */
      model?: ServedModel;
    } = {},
  ): Promise<Admitted> {
    const chunks = clientChunks;
    if (chunks.length === 0) throw new AppError("empty_batch", "The request contains no chunks");
    if (chunks.length > this.options.maxChunksPerRequest) {
      throw new AppError(
        "payload_too_large",
        `The request has ${chunks.length} chunks; at most ${this.options.maxChunksPerRequest} are accepted per request`,
        { details: { count: chunks.length, max: this.options.maxChunksPerRequest } },
      );
    }
    if (chunks.length > this.options.maxQueueSize) {
      // Waiting cannot help: even an empty queue is too small for this request.
      throw new AppError(
        "payload_too_large",
        `The request has ${chunks.length} chunks; the queue holds at most ${this.options.maxQueueSize} (MAX_QUEUE_SIZE): send smaller requests`,
        { details: { count: chunks.length, max_queue_size: this.options.maxQueueSize } },
      );
    }
    const tooDeep = chunks.flatMap((chunk) =>
      jsonDepthExceeds(chunk.payload, MAX_PAYLOAD_DEPTH) ? [chunk.chunkId] : [],
    );
    if (tooDeep.length > 0) {
      throw new AppError(
        "invalid_request",
        `${tooDeep.length} chunk(s) carry metadata nested deeper than ${MAX_PAYLOAD_DEPTH} levels`,
        { details: { max_depth: MAX_PAYLOAD_DEPTH, chunk_ids: tooDeep.slice(0, 100) } },
      );
    }
    const blank = chunks.flatMap((chunk, index) =>
      chunk.text.trim() === "" ? [{ index, id: chunk.chunkId }] : [],
    );
    if (blank.length > 0) {
      throw new AppError("empty_text", `${blank.length} chunk(s) have no text to embed`, {
        details: { chunks: blank.slice(0, 100) },
      });
    }
    const seen = new Set<string>();
    const duplicates = new Set<string>();
    for (const chunk of chunks) {
      if (seen.has(chunk.chunkId)) duplicates.add(chunk.chunkId);
      seen.add(chunk.chunkId);
    }
    if (duplicates.size > 0) {
      throw new AppError("duplicate_chunk_id", "Chunk ids must be unique within a request", {
        details: { chunk_ids: [...duplicates].slice(0, 100) },
      });
    }
    // Before tokenizing anything: a collection of another model refuses every chunk alike (unless
    // it is being re-embedded to the model: its chunks then go to the new version).
    await this.rerouted.get(requested)?.catch(() => {});
    const route = await this.bindings.route(requested, this.model(), options.model);
    const { collection } = route;
    const model: TokenCounter = route.model ?? { embedder: this.embedder, info: this.model() };

    if (overflow.policy === "reject") await this.rejectOverlong(chunks, model);
    else if (overflow.policy !== "truncate")
      await this.rejectOverWindowCap(chunks, overflow.overlapTokens, model);
    const spec = {
      policy: overflow.policy === "reject" ? ("truncate" as const) : overflow.policy,
      overlapTokens: overflow.overlapTokens,
    };
    const queued = chunks.map((chunk) => ({ ...chunk, overflow: spec }));
    const jobId =
      options.idempotencyKey === undefined
        ? randomUUID()
        : idempotentJobId(requested, options.idempotencyKey);
    const replace = options.replaceDocuments ? { replaceDocuments: options.replaceDocuments } : {};
    // A copy for the version being built needs room too: the request is admitted only if both fit
    // (unless it alone takes over half the queue, which must still be able to get in).
    const copy = route.alsoTo !== null && 2 * chunks.length <= this.options.maxQueueSize;
    const copyTokens = copy ? chunks.reduce((sum, chunk) => sum + chunk.estimatedTokens, 0) : 0;
    const result = await this.queue.enqueue({
      jobId,
      collection,
      chunks: queued,
      maxQueueSize: this.options.maxQueueSize - (copy ? chunks.length : 0),
      maxQueueTokens: Math.max(copyTokens, this.options.maxQueueTokens - copyTokens),
      ...replace,
    });
    if (result.accepted && route.alsoTo !== null) {
      // The copy for the version a re-embed builds: queued after the primary (a newer version of each
      // chunk than the re-embed's copy of its stored text), under a job id derived from the primary's
      // so a repeated request (same Idempotency-Key) finds both. Its room was checked with the primary's.
      await this.queue.enqueue({
        jobId: idempotentJobId(route.alsoTo, result.jobId),
        collection: route.alsoTo,
        chunks: queued,
        maxQueueSize: Number.MAX_SAFE_INTEGER,
        ...replace,
      });
    }
    if (!result.accepted) {
      const requestedTokens = chunks.reduce((sum, chunk) => sum + chunk.estimatedTokens, 0);
      // Chunks that must drain before this request fits; by tokens, in chunks of this request's size.
      const excess =
        result.limit === "chunks"
          ? result.pending + chunks.length - result.maxQueueSize
          : Math.ceil(
              ((result.pendingTokens + requestedTokens - result.maxQueueTokens) * chunks.length) /
                Math.max(1, requestedTokens),
            );
      const message =
        result.limit === "chunks"
          ? `The queue holds ${result.pending} of ${result.maxQueueSize} chunks (MAX_QUEUE_SIZE); ${chunks.length} more do not fit`
          : `The queue holds about ${result.pendingTokens} of ${result.maxQueueTokens} tokens (MAX_QUEUE_TOKENS); this request's ${requestedTokens} more do not fit`;
      throw new AppError("queue_full", message, {
        retryAfterSeconds: this.retryAfterSeconds(excess),
        details: {
          limit: result.limit,
          pending: result.pending,
          pending_tokens: result.pendingTokens,
          max_queue_size: result.maxQueueSize,
          max_queue_tokens: result.maxQueueTokens,
          requested: chunks.length,
          requested_tokens: requestedTokens,
        },
      });
    }
    return { jobId: result.jobId, count: result.count, duplicate: result.duplicate };
  }

  /**
   * The reject policy refuses the whole request if any text (with its prefix and special tokens)
   * exceeds the model's limit. Only texts that may not fit (surelyFits) are tokenized.
   */
  private async rejectOverlong(chunks: ClientChunk[], served: TokenCounter): Promise<void> {
    const model = served.info;
    if (!model) {
      throw new AppError(
        "model_not_ready",
        "The reject overflow policy needs the model's tokenizer, still loading",
        {
          retryAfterSeconds: 2,
        },
      );
    }
    const overlong = await this.overlongChunks(chunks, served.embedder, model, model.maxTokens);
    if (overlong.length > 0) {
      throw new AppError(
        "text_too_long",
        `${overlong.length} chunk(s) exceed the model's ${model.maxTokens}-token limit (overflow policy reject): ${overlong
          .slice(0, 10)
          .map((o) => o.chunk_id)
          .join(", ")}`,
        { details: { max_tokens: model.maxTokens, chunks: overlong.slice(0, 1000) } },
      );
    }
  }

  /**
   * Split and pool refuse the whole request if any text would need more than MAX_WINDOWS_PER_CHUNK
   * windows (maxChunkTokens): the cap bounds the work and the points one chunk can cost. Only texts
   * that may be over it are tokenized, which at the default cap means texts of tens of kilobytes.
   */
  private async rejectOverWindowCap(
    chunks: ClientChunk[],
    overlapTokens: number,
    served: TokenCounter,
  ): Promise<void> {
    const maxWindows = this.options.maxWindowsPerChunk;
    const model = served.info;
    if (!model) {
      // The limit depends on the model: a text that could be over it even with 64-token windows waits.
      if (chunks.some((chunk) => !surelyFits(chunk.text, "", maxWindows * 64))) {
        throw new AppError(
          "model_not_ready",
          `Checking a long text against MAX_WINDOWS_PER_CHUNK needs the model's tokenizer, still loading`,
          { retryAfterSeconds: 2 },
        );
      }
      return;
    }
    const maxTokens = maxChunkTokens(model, overlapTokens, maxWindows);
    const overlong = await this.overlongChunks(chunks, served.embedder, model, maxTokens);
    if (overlong.length > 0) {
      throw new AppError(
        "text_too_long",
        `${overlong.length} chunk(s) would need more than ${maxWindows} windows (MAX_WINDOWS_PER_CHUNK: ${maxTokens} tokens with this model and overlap): ${overlong
          .slice(0, 10)
          .map((o) => `${o.chunk_id} (${o.tokens} tokens)`)
          .join(", ")}`,
        {
          details: {
            max_windows: maxWindows,
            max_tokens: maxTokens,
            chunks: overlong.slice(0, 1000),
          },
        },
      );
    }
  }

  /** The chunks over `maxTokens` as the model counts them with its passage prefix. */
  private async overlongChunks(
    chunks: ClientChunk[],
    embedder: Pick<Embedder, "countTokens">,
    model: ModelInfo,
    maxTokens: number,
  ): Promise<Array<{ chunk_id: string; tokens: number }>> {
    const texts = chunks.map((chunk) => chunk.text);
    const overlong = await overlongTexts(embedder, texts, "passage", model.prefixes.passage, maxTokens);
    return overlong.map(({ index, tokens }) => ({ chunk_id: chunks[index]?.chunkId ?? "", tokens }));
  }

  /** Time for the measured drain rate to make room; a guess of 5 s while nothing has drained yet. */
  retryAfterSeconds(excessChunks: number): number {
    const { chunksPerSecond } = this.throughput.rates();
    if (chunksPerSecond <= 0) return 5;
    return Math.min(300, Math.max(1, Math.ceil(excessChunks / chunksPerSecond)));
  }
}

/**
 * Deepest metadata nesting accepted. Payloads are hashed, serialised and stored by recursive code
 * (here and in every vector store); a few thousand levels would overflow the stack there, long after
 * the request was accepted, so they are refused at the door.
 */
export const MAX_PAYLOAD_DEPTH = 32;

/** Whether a JSON value nests objects/arrays deeper than `max` levels (iterative: any depth is safe). */
export function jsonDepthExceeds(value: unknown, max: number): boolean {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const item = stack.pop()!;
    if (item.value === null || typeof item.value !== "object") continue;
    const depth = item.depth + 1;
    if (depth > max) return true;
    const children = Array.isArray(item.value) ? item.value : Object.values(item.value);
    for (const child of children) stack.push({ value: child, depth });
  }
  return false;
}

export function newChunk(
  chunkId: string,
  text: string,
  documentId: string | null,
  payload: Payload,
): ClientChunk {
  return { chunkId, text, documentId, payload, estimatedTokens: queueTokenEstimate(text) };
}
