import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type {
  FastifyBaseLogger,
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from "fastify";
import type { Logger } from "pino";
import type { DurabilityReport } from "../domain/durability.js";
import { AppError } from "../domain/errors.js";
import type { Distance, ModelInfo } from "../domain/types.js";
import type { Embedder } from "../embedder/embedder.js";
import { ModelRoster, type ServedModel } from "../embedder/model-roster.js";
import type { ThroughputSource } from "../observability/throughput-meter.js";
import type { JobQueue } from "../queue/job-queue.js";
import type { VectorStore } from "../vector-store/vector-store.js";
import type { Admission, OverflowRequest } from "./admission.js";
import type { BackendHealth } from "./backend-health.js";
import type { Metrics } from "./metrics.js";

/**
 * What the HTTP layer is built from, and the helpers routes share. Routes and plugins import this
 * module, never app.ts (which imports them): the server's imports point one way.
 */

export interface AuthOptions {
  /** Accepted bearer keys; none means the server is open (auth is off). */
  apiKeys: string[];
  /** Requests per minute per key (0 = no limit). */
  perKeyRequestsPerMinute: number;
}

export interface AppDeps {
  logger: Logger;
  queue: JobQueue;
  store: VectorStore;
  embedder: Embedder;
  /** Every served model, the default first (EMBEDDING_MODELS); absent = the default model alone. */
  models?: ModelRoster;
  admission: Admission;
  throughput: ThroughputSource;
  /** The loaded model, or null while it loads. */
  model(): ModelInfo | null;
  isShuttingDown(): boolean;
  /** Called after a request's chunks are durably queued (wakes the local pipeline). */
  onEnqueued(): void;
  /** API keys and per-key rate limit; no keys means no auth. */
  auth?: AuthOptions;
  /** Prometheus registry behind GET /metrics (a fresh one if not given). */
  metrics?: Metrics;
  /** The queue engine's durability for GET /v1/status; absent or null = the embedded SQLite queue. */
  durability?: () => DurabilityReport | null;
  /** What requests have seen of the queue and the store (answering, failing since, out of space). */
  health: BackendHealth;
  /** Bytes the queue's storage can still take, where that can be measured (the SQLite file). */
  queueFreeBytes?: () => number;
  limits: {
    maxQueueSize: number;
    bodyLimitBytes: number;
    /** Time a client has to send a whole body. */
    bodyTimeoutMs: number;
    /** /ready fails once the queue or the store has failed this long. */
    readyFailureMs: number;
    seedCollection: string;
    distance: Distance;
    defaultOverflow: OverflowRequest;
  };
}

export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/** The request's overflow choice over the server default. */
export function overflowFor(
  deps: AppDeps,
  policy?: OverflowRequest["policy"],
  overlapTokens?: number,
): OverflowRequest {
  return {
    policy: policy ?? deps.limits.defaultOverflow.policy,
    overlapTokens: overlapTokens ?? deps.limits.defaultOverflow.overlapTokens,
  };
}

export function requireModel(deps: AppDeps): ModelInfo {
  const model = deps.model();
  if (!model) throw new AppError("model_not_ready", "The model is still loading", { retryAfterSeconds: 2 });
  return model;
}

const soloRosters = new WeakMap<AppDeps, ModelRoster>();

/** The served models; an app built with one embedder (tests) serves it alone. */
export function rosterOf(deps: AppDeps): ModelRoster {
  if (deps.models) return deps.models;
  let roster = soloRosters.get(deps);
  if (!roster) {
    roster = ModelRoster.solo(deps.embedder, deps.model);
    soloRosters.set(deps, roster);
  }
  return roster;
}

/**
 * The loaded model a request names (any name it accepts), or the default when it names none:
 * `404 model_not_found` naming what is served, `503 model_not_ready` while it loads.
 */
export function servedModel(deps: AppDeps, requested: string | undefined): ServedModel & { info: ModelInfo } {
  const roster = rosterOf(deps);
  const served = requested === undefined ? roster.default : roster.byName(requested);
  if (served === undefined && !roster.loaded()) {
    // Its names are known once it has loaded (a hub id, a directory's config).
    throw new AppError("model_not_ready", "The models are still loading", { retryAfterSeconds: 2 });
  }
  if (served === undefined) {
    const names = roster.describeNames();
    throw new AppError(
      "model_not_found",
      `The model '${requested}' is not served here; this server serves ${names.available.map((n) => `'${n}'`).join(", ")}`,
      { details: { param: "model", available: names.available, aliases: names.aliases } },
    );
  }
  if (served.info === null) {
    throw new AppError("model_not_ready", "The model is still loading", { retryAfterSeconds: 2 });
  }
  return { embedder: served.embedder, info: served.info };
}

/**
 * The served model that embeds queries for a collection: the one its binding names, else the
 * default (whose scores there mean nothing: GET /v1/collections/{c} says `model_matches: false`).
 * With one model served, the default without asking the store.
 */
export async function queryModel(
  deps: AppDeps,
  collection: string,
): Promise<ServedModel & { info: ModelInfo }> {
  const roster = rosterOf(deps);
  const fallback = servedModel(deps, undefined);
  if (roster.size === 1) return fallback;
  const binding = (await deps.store.describeCollection(collection))?.binding;
  const bound = binding ? roster.byFingerprint(binding.fingerprint) : undefined;
  return bound?.info ? { embedder: bound.embedder, info: bound.info } : fallback;
}
