import { QdrantClient, type Schemas } from "@qdrant/js-client-rest";
import type { Logger } from "pino";
import { logicalName, versionName, versionOf } from "../../domain/collection-versions.js";
import { AppError } from "../../domain/errors.js";
import { pointId, windowPointId } from "../../domain/ids.js";
import type { ModelBinding } from "../../domain/model-binding.js";
import { WINDOW_TEXT_FIELD } from "../../domain/payload-fields.js";
import type { Payload, PointFingerprint, SearchFilter, SearchHit } from "../../domain/types.js";
import { assertRecordFingerprints, assertSameBinding } from "../binding-checks.js";
import { checkWrites, fingerprintId, rounds, windowsFirst, writeResult } from "../chunk-writes.js";
import { chunkFromPoint } from "../stored-chunk.js";
import { assertQueryDimension, assertTopK, assertVectorDimensions } from "../vector-dimensions.js";
import {
  type ChunkScanPage,
  type ChunkWrite,
  type ChunkWriteResult,
  type CollectionDescription,
  type CollectionSpec,
  type DocumentDeletion,
  MAX_LISTED_CHUNK_IDS,
  type ParentRef,
  type StoredChunk,
  type StoredVersion,
  type VectorStore,
} from "../vector-store.js";
import { parentTextsByGroup, type StoredWindow } from "../window-text.js";
import { BINDING_METADATA_KEY, bindingMetadata, bindingOf } from "./collection-binding.js";
import {
  cursorOf,
  firstVersionCollection,
  isLaterVersion,
  isOwnVersion,
  ownVersionCollection,
  pointIdOfCursor,
  versionNameOf,
} from "./collection-layout.js";
import { type CollectionShape, compareShapes, shapeOf } from "./collection-shape.js";
import {
  type SizedOperation,
  touchOperations,
  type VersionedPoint,
  versionedPoint,
} from "./point-operations.js";
import { classifyQdrantError, isAlreadyExists, isCollectionNotFound } from "./qdrant-errors.js";
import { type QdrantFilter, toQdrantFilter } from "./qdrant-filter.js";
import {
  fingerprintOf,
  PAYLOAD_INDEXES,
  RAG_KEY,
  type RagFields,
  splitPayload,
  VERSION_KEY,
} from "./qdrant-payload.js";
import { splitBatches, vectorJsonBytes } from "./request-batches.js";
import { assertVersionedWrites } from "./server-version.js";
import { olderThan, staleGroupPoints, updateFilter } from "./version-filters.js";

/** Points (or operations) per request: far below Qdrant's limits, small enough to retry cheaply. */
const MAX_POINTS_PER_REQUEST = 256;
/** JSON bytes per request, estimated; Qdrant's default `max_request_size_mb` is 32. */
const MAX_REQUEST_BYTES = 16 * 1024 * 1024;
/** Ids per retrieve request and chunk ids per delete filter. */
const IDS_PER_REQUEST = 256;
/** A point's share of an upsert's `update_filter`: its id, and at most one clause of its own. */
const FILTER_BYTES_PER_POINT = 256;

export interface QdrantStoreOptions {
  /** e.g. http://127.0.0.1:6333 */
  url: string;
  apiKey?: string;
  /** Timeout of one HTTP request; a timed-out call is a retryable ProcessingError. */
  timeoutMs: number;
  logger?: Logger;
}

/**
 * Qdrant through the official REST client. Point ids are the core's deterministic UUIDv5s and every
 * write waits (`wait=true`) until applied. Writes are versioned: an upsert's `update_filter` replaces
 * an existing point only when its `_rag.version` is older, so "write, then ack" repeated after a
 * crash, or a stale worker finishing late, never puts older content over newer. The user's payload
 * is stored as is; the server's own fields live under `_rag` (see qdrant-payload.ts) and are indexed
 * for the writes and deletes that filter on them. A collection is created as its version 1 behind an
 * alias of its name, so that re-embedding can swap the name to a later version (collection-layout.ts).
 */
export class QdrantStore implements VectorStore {
  private readonly client: QdrantClient;
  private readonly timeoutMs: number;
  private readonly logger: Logger | undefined;
  /** Collections known to exist, by the name called with, with their shape (ensured or read back). */
  private readonly shapes = new Map<string, CollectionShape>();
  /**
   * Their bindings, read with the shape. A collection's binding once set never changes, but a name
   * may reach another version after a cutover in another process: a cached shape or binding that
   * refuses a call is read again once before the call is refused (see checkedShape).
   */
  private readonly bindings = new Map<string, ModelBinding | null>();
  /** The server's version, checked once per store (again after a failed check). */
  private serverChecked: Promise<void> | undefined;

  constructor(options: QdrantStoreOptions) {
    this.timeoutMs = options.timeoutMs;
    this.logger = options.logger?.child({ component: "qdrant-store" });
    this.client = new QdrantClient({
      url: options.url,
      ...(options.apiKey === undefined ? {} : { apiKey: options.apiKey }),
      timeout: options.timeoutMs,
      checkCompatibility: false,
    });
  }

  async ensureCollection(spec: CollectionSpec): Promise<void> {
    if (!Number.isInteger(spec.dimension) || spec.dimension < 1) {
      throw new AppError(
        "invalid_request",
        `Collection dimension must be a positive integer, got ${spec.dimension}`,
        { details: { collection: spec.name, dimension: spec.dimension } },
      );
    }
    if (spec.distance !== "Cosine" && spec.distance !== "Euclid" && spec.distance !== "Dot") {
      throw new AppError(
        "invalid_request",
        `Unknown distance ${JSON.stringify(spec.distance)}; use Cosine, Euclid or Dot`,
        { details: { distance: spec.distance } },
      );
    }
    await this.checkServer(spec.name);
    const wanted: CollectionShape = { dimension: spec.dimension, distance: spec.distance };
    const cached = this.shapes.get(spec.name);
    if (cached !== undefined) {
      const binding = this.bindings.get(spec.name) ?? null;
      // An unbound collection asked to take a binding goes the long way, through adoption.
      if (binding !== null || spec.binding === undefined) {
        try {
          compareShapes(spec.name, cached, wanted);
          assertSameBinding(spec.name, binding, spec.binding);
          return;
        } catch (error) {
          // Refused by what was cached: the name may reach another version by now; read it again.
          if (!isMismatch(error)) throw error;
        }
      }
    }
    let info = await this.readCollection(spec.name, "ensureCollection");
    if (info === undefined) {
      await this.createCollection(spec);
      info = await this.readCollection(spec.name, "ensureCollection");
      if (info === undefined) {
        throw new AppError(
          "collection_not_found",
          `Collection "${spec.name}" vanished right after creation`,
          {
            details: { collection: spec.name },
          },
        );
      }
    }
    const existing = shapeOf(spec.name, info);
    compareShapes(spec.name, existing, wanted);
    // A binding this process holds for a Qdrant that keeps no metadata is never given up here.
    let binding = bindingOf(info) ?? this.bindings.get(spec.name) ?? null;
    if (binding === null && spec.binding !== undefined) {
      binding = await this.adoptCollection(spec.name, spec.binding);
    }
    assertSameBinding(spec.name, binding, spec.binding);
    // Indexes are created by whoever finds them missing, so a creator that died early is repaired.
    const indexed = new Set(Object.keys(info.payload_schema ?? {}));
    for (const { field, schema } of PAYLOAD_INDEXES) {
      if (indexed.has(field)) continue;
      await this.call("create payload index", spec.name, () =>
        this.client.createPayloadIndex(spec.name, { wait: true, field_name: field, field_schema: schema }),
      );
    }
    this.shapes.set(spec.name, existing);
    this.bindings.set(spec.name, binding);
  }

  /**
   * A client's name (`docs`) becomes the physical collection `docs__v1` and the alias `docs` to it,
   * so that a cutover can later point the name at `docs__v2`; a later version is created under its
   * own name. Two requests, not atomic: a crash between them leaves `docs__v1` without the alias,
   * which the next call finds missing and completes (creating `docs__v1` again is "already exists").
   */
  private async createCollection(spec: CollectionSpec): Promise<void> {
    const physical = isLaterVersion(spec.name) ? spec.name : firstVersionCollection(spec.name);
    try {
      // Through the generated API: the client's createCollection helper drops `metadata`.
      await this.client.api().createCollection({
        collection_name: physical,
        vectors: { size: spec.dimension, distance: spec.distance },
        ...(spec.binding === undefined ? {} : { metadata: bindingMetadata(spec.binding) }),
      });
      this.logger?.info(
        { collection: spec.name, physical, dimension: spec.dimension, distance: spec.distance },
        "created Qdrant collection",
      );
    } catch (error) {
      // Another process created it between our read and our create: compare with what won.
      if (!isAlreadyExists(error)) throw this.classify(error, "create collection", physical);
    }
    if (physical === spec.name) return;
    try {
      // Another process doing the same at once sets the same alias again (Qdrant replaces it).
      await this.client.updateCollectionAliases({
        actions: [{ create_alias: { collection_name: physical, alias_name: spec.name } }],
      });
    } catch (error) {
      // The name became a collection meanwhile (a server from before versions created it): use it.
      if (!isAlreadyExists(error)) throw this.classify(error, "create alias", spec.name);
    }
  }

  async describeCollection(collection: string): Promise<CollectionDescription | null> {
    const info = await this.readCollection(collection, "describeCollection");
    if (info === undefined) return null;
    const shape = shapeOf(collection, info);
    const binding = bindingOf(info);
    this.shapes.set(collection, shape);
    // Never forget a binding held for a Qdrant that keeps no metadata (see adoptCollection).
    if (binding !== null || !this.bindings.has(collection)) this.bindings.set(collection, binding);
    return { name: collection, ...shape, binding };
  }

  /**
   * Qdrant merges collection metadata with no condition, so two servers adopting the same unbound
   * collection at once with different models could both think they won: each reads the binding back
   * and the one that lost learns it, except when the second write lands after the first read.
   * Adoption only concerns collections made before bindings, so that window is accepted here.
   */
  async adoptCollection(collection: string, binding: ModelBinding): Promise<ModelBinding> {
    const before = await this.readCollection(collection, "adoptCollection");
    if (before === undefined) {
      throw new AppError("collection_not_found", `Collection "${collection}" does not exist`, {
        details: { collection },
      });
    }
    const existing = bindingOf(before);
    if (existing !== null) return existing;
    await this.call("adopt collection", collection, () =>
      this.client.updateCollection(collection, {
        metadata: bindingMetadata({ ...binding, adopted: true }),
      }),
    );
    const after = await this.readCollection(collection, "adoptCollection");
    if (after === undefined) {
      throw new AppError("collection_not_found", `Collection "${collection}" does not exist`, {
        details: { collection },
      });
    }
    const stored = bindingOf(after);
    if (stored !== null) {
      this.bindings.set(collection, stored);
      return stored;
    }
    // A Qdrant that keeps no collection metadata (older than the contract this adapter follows)
    // accepts the field and drops it. This process still holds the binding (and checks its own
    // writes against it), but nothing is recorded for the next one: say so rather than fail ingest.
    this.logger?.warn(
      { collection, key: BINDING_METADATA_KEY },
      "this Qdrant keeps no collection metadata: the collection's model binding is not recorded, so a server with another model will not be refused",
    );
    const held = { ...binding, adopted: true };
    this.bindings.set(collection, held);
    return held;
  }

  /**
   * One POST /collections/aliases with a delete_alias and a create_alias action: Qdrant applies them
   * under one lock, so no call sees the name reach nothing. They are not all-or-nothing, though (a
   * create that fails leaves the delete done), so the target is read first: a swap to a missing
   * collection changes nothing. A version of the alias's own collection (`docs` is its version 1,
   * `docs__v1`; `docs__v2`) needs no other read; any other target is resolved through the aliases
   * (an alias cannot point at an alias), and an alias that is a collection's own name is refused.
   */
  async setAlias(alias: string, collection: string): Promise<void> {
    const own = ownVersionCollection(alias, collection);
    try {
      const target = own ?? (await this.foreignTarget(alias, collection));
      if ((await this.readCollection(target, "set alias")) === undefined) {
        throw new AppError("collection_not_found", `Collection "${collection}" does not exist`, {
          details: { collection, ...(target === collection ? {} : { physical: target }) },
        });
      }
      await this.call("set alias", alias, () =>
        this.client.updateCollectionAliases({
          actions: [
            { delete_alias: { alias_name: alias } },
            { create_alias: { collection_name: target, alias_name: alias } },
          ],
        }),
      );
    } catch (error) {
      // classify() keeps Qdrant's answer as the cause: "already exists" means the alias's name is a
      // collection's, and the delete before the create found no alias to delete.
      if (!isAlreadyExists(error instanceof Error ? error.cause : undefined)) throw error;
      if (own !== undefined) {
        throw new AppError(
          "version_migration_required",
          `Collection "${alias}" was created in Qdrant before versions, as a collection of that name: Qdrant cannot point the name at "${collection}" until version 1 has moved to "${firstVersionCollection(alias)}" (README: Qdrant collections made before versions)`,
          { details: { collection: alias, version: collection, move_to: firstVersionCollection(alias) } },
        );
      }
      throw aliasIsCollection(alias, collection);
    } finally {
      // What this process knew under the alias's name was the old target's.
      this.shapes.delete(alias);
      this.bindings.delete(alias);
    }
  }

  /** The collection `collection` reaches, for an alias that must not be a collection's own name. */
  private async foreignTarget(alias: string, collection: string): Promise<string> {
    const aliases = await this.aliasTargets("set alias");
    const current = aliases.get(alias);
    if (current !== undefined && isOwnVersion(alias, current)) throw aliasIsCollection(alias, collection);
    return aliases.get(collection) ?? collection;
  }

  /**
   * The version `name` reaches: `name` itself for version 1 (the alias's `name__v1`, or a collection
   * of that name made before versions, or none yet), else the physical version (`name__v2`), read
   * from GET /aliases.
   */
  async resolveAlias(name: string): Promise<string> {
    const target = (await this.aliasTargets("resolve alias")).get(name);
    return target === undefined ? name : versionNameOf(name, target);
  }

  /**
   * One scroll page of `limit` points in point id order (Qdrant's only order without a range index),
   * from the cursor on; each chunk's fingerprint point (its own point id: an unsplit chunk's point,
   * window 0 of a split one) gives the chunk, the other windows are skipped, and split chunks' texts
   * are put back together from their windows. So a page holds at most `limit` chunks, maybe none,
   * and the cursor is Qdrant's next point id. Points of other writers (no `_rag`) come back without
   * text (a re-embed counts them as skipped).
   */
  async scanChunks(name: string, after: string | null, limit: number): Promise<ChunkScanPage> {
    const page = await this.call("scanChunks", name, () =>
      this.client.scroll(name, {
        limit,
        ...(after === null ? {} : { offset: pointIdOfCursor(after) }),
        with_payload: true,
        with_vector: false,
      }),
    );
    const heads: Array<{
      chunkId: string;
      documentId: string | null;
      payload: Payload;
      version: number | null;
    }> = [];
    const foreign: StoredChunk[] = [];
    for (const point of page.points) {
      const { payload, rag } = splitPayload(point.payload);
      const group = rag?.group_id;
      if (typeof group !== "string") {
        foreign.push({ chunkId: String(point.id), documentId: null, payload, text: null, version: null });
        continue;
      }
      // Point ids derive from the logical name, whichever version `name` is.
      if (String(point.id) !== pointId(name, group)) continue;
      heads.push({
        chunkId: group,
        documentId: typeof rag?.document_id === "string" ? rag.document_id : null,
        payload,
        version: typeof rag?.version === "number" ? rag.version : null,
      });
    }
    const parents = heads.flatMap((head) =>
      typeof head.payload.window_count === "number"
        ? [{ chunkId: head.chunkId, windows: head.payload.window_count }]
        : [],
    );
    const texts = parents.length > 0 ? await this.parentTexts(name, parents) : new Map<string, string>();
    const next = page.next_page_offset;
    return {
      chunks: [...heads.map((head) => chunkFromPoint(head, texts.get(head.chunkId))), ...foreign],
      nextCursor: typeof next === "string" || typeof next === "number" ? cursorOf(next) : null,
    };
  }

  /**
   * The versions of `logical` among Qdrant's collections (GET /collections), each read under its own
   * physical name and counted: version 1 is the collection `logical` itself (made before versions)
   * or else `logical__v1`, and is listed as `logical`, the name clients know it by.
   */
  async listVersions(logical: string): Promise<StoredVersion[]> {
    const { collections } = await this.call("list versions", logical, () => this.client.getCollections());
    const names = new Set(collections.map((c) => c.name));
    const found: Array<{ name: string; physical: string }> = [];
    if (names.has(logical)) found.push({ name: logical, physical: logical });
    else if (names.has(firstVersionCollection(logical))) {
      found.push({ name: logical, physical: firstVersionCollection(logical) });
    }
    for (const name of names) {
      if (
        isLaterVersion(name) &&
        logicalName(name) === logical &&
        versionName(logical, versionOf(name)) === name
      ) {
        found.push({ name, physical: name });
      }
    }
    found.sort((a, b) => versionOf(a.name) - versionOf(b.name));
    const versions: StoredVersion[] = [];
    for (const { name, physical } of found) {
      const info = await this.readCollection(physical, "list versions");
      if (info === undefined) continue; // deleted meanwhile
      const { count } = await this.call("list versions", physical, () =>
        this.client.count(physical, { exact: true }),
      );
      versions.push({ name, ...shapeOf(physical, info), binding: bindingOf(info), points: count });
    }
    return versions;
  }

  /**
   * Deletes version `name` (`docs` for version 1: the collection `docs__v1`, or `docs` itself when made
   * before versions) with DELETE /collections, once GET /aliases shows that no alias points at it
   * (Qdrant would delete such an alias with the collection) and that it is not a collection reached
   * by its own name. Qdrant has no conditional delete: a cutover to this version in the instant
   * between the read and the delete would leave the name reaching nothing (the route refuses that
   * case first, so only a concurrent request can hit it). Returns the points it held (counted first:
   * Qdrant's delete does not say).
   */
  async deleteCollection(name: string): Promise<number> {
    const aliases = await this.aliasTargets("delete version");
    const physical = await this.versionCollection(name, aliases);
    const info = await this.readCollection(physical, "delete version");
    if (info === undefined) {
      throw new AppError("collection_not_found", `Collection "${name}" does not exist`, {
        details: { collection: name, ...(physical === name ? {} : { physical }) },
      });
    }
    const reachedBy =
      physical === name && !isLaterVersion(name)
        ? name
        : [...aliases].find(([, target]) => target === physical)?.[0];
    if (reachedBy !== undefined) {
      throw new AppError(
        "version_active",
        `Collection "${name}" is what the name "${reachedBy}" reaches; point the name elsewhere first`,
        { details: { collection: name, reached_by: reachedBy } },
      );
    }
    const { count } = await this.call("delete version", physical, () =>
      this.client.count(physical, { exact: true }),
    );
    await this.call("delete version", physical, () => this.client.deleteCollection(physical));
    this.logger?.info({ collection: name, physical, points: count }, "deleted Qdrant collection (a version)");
    for (const key of [name, physical]) {
      this.shapes.delete(key);
      this.bindings.delete(key);
    }
    return count;
  }

  /**
   * The collection holding version `name`: `docs__vN` itself; for version 1 (`docs`), `docs__v1` when
   * `docs` is an alias or nothing, `docs` itself when it is a collection (made before versions).
   */
  private async versionCollection(name: string, aliases: Map<string, string>): Promise<string> {
    if (isLaterVersion(name)) return name;
    if (aliases.has(name)) return firstVersionCollection(name);
    return (await this.readCollection(name, "delete version")) === undefined
      ? firstVersionCollection(name)
      : name;
  }

  /** Every alias and the collection it points at (GET /aliases). */
  private async aliasTargets(operation: string): Promise<Map<string, string>> {
    const { aliases } = await this.call(operation, "", () => this.client.getAliases());
    return new Map(aliases.map((a) => [a.alias_name, a.collection_name]));
  }

  /**
   * Per round (each chunk id once): window points, then fingerprint points, then touches, then the
   * fingerprints read back, then one delete of everything older than them. Requests are batched across
   * chunks, so their number grows with the batch's bytes, not with its chunks.
   */
  async writeChunks(collection: string, writes: ChunkWrite[]): Promise<ChunkWriteResult[]> {
    checkWrites(collection, writes);
    const records = writes.flatMap((w) => (w.kind === "points" ? w.records : []));
    const shape = await this.checkedShape(collection, "writeChunks", (current, binding) => {
      assertRecordFingerprints(collection, binding, writes);
      assertVectorDimensions(collection, records, current.dimension);
    });
    // Build every request body first: a refused payload fails the whole call before anything is written.
    const pointsOf = writes.map((w) =>
      w.kind === "points" ? windowsFirst(w.records).map(versionedPoint) : [],
    );
    const touchesOf = writes.map((w) =>
      w.kind === "touch" ? touchOperations(fingerprintId(collection, w), w) : [],
    );
    const vectorBytes = vectorJsonBytes(shape.dimension);
    const results: ChunkWriteResult[] = [];
    for (const round of rounds(writes)) {
      const roundPoints = round.flatMap(({ index }) => pointsOf[index] ?? []);
      const fingerprintIds = new Set(round.map(({ write }) => fingerprintId(collection, write)));
      await this.upsertVersioned(
        collection,
        roundPoints.filter((p) => !fingerprintIds.has(p.id)),
        vectorBytes,
      );
      await this.upsertVersioned(
        collection,
        roundPoints.filter((p) => fingerprintIds.has(p.id)),
        vectorBytes,
      );
      await this.batchUpdate(
        collection,
        round.flatMap(({ index }) => touchesOf[index] ?? []),
      );
      const stored = await this.retrieveRag(collection, [...fingerprintIds], "writeChunks");
      const stale: Array<{ chunkId: string; version: number }> = [];
      for (const { index, write } of round) {
        const rag = stored.get(fingerprintId(collection, write));
        const fingerprint = fingerprintOf(rag);
        results[index] = writeResult(write, fingerprint);
        if (fingerprint?.version != null)
          stale.push({ chunkId: write.chunkId, version: fingerprint.version });
      }
      for (let start = 0; start < stale.length; start += IDS_PER_REQUEST) {
        const filter = staleGroupPoints(stale.slice(start, start + IDS_PER_REQUEST));
        await this.call("writeChunks", collection, () =>
          this.client.delete(collection, { wait: true, filter }),
        );
      }
    }
    return results;
  }

  async fingerprints(collection: string, ids: string[]): Promise<Map<string, PointFingerprint>> {
    const result = new Map<string, PointFingerprint>();
    if (ids.length === 0) return result;
    let rags: Map<string, Partial<RagFields>>;
    try {
      rags = await this.retrieveRag(collection, ids, "fingerprints");
    } catch (error) {
      if (isCollectionNotFound(error)) return result;
      throw error;
    }
    for (const [id, rag] of rags) {
      const fp = fingerprintOf(rag);
      if (fp !== undefined) result.set(id, fp);
    }
    return result;
  }

  async deleteDocument(
    collection: string,
    documentId: string,
    belowVersion: number,
  ): Promise<DocumentDeletion> {
    const filter: QdrantFilter = {
      must: [{ key: `${RAG_KEY}.document_id`, match: { value: documentId } }, olderThan(belowVersion)],
    };
    // The chunk ids are read first (one bounded page): Qdrant's delete does not say what it removed.
    let chunkIds: string[];
    try {
      const page = await this.call("deleteDocument", collection, () =>
        this.client.scroll(collection, {
          filter,
          limit: MAX_LISTED_CHUNK_IDS,
          with_payload: [RAG_KEY],
          with_vector: false,
        }),
      );
      chunkIds = [...new Set(page.points.map((p) => String(splitPayload(p.payload).rag?.group_id ?? p.id)))];
    } catch (error) {
      if (isCollectionNotFound(error)) return { deleted: 0, chunkIds: [] };
      throw error;
    }
    const deleted = await this.deleteByFilter(collection, filter, "deleteDocument");
    return { deleted, chunkIds };
  }

  async deleteChunkVersions(
    collection: string,
    chunks: ReadonlyArray<{ chunkId: string; version: number }>,
  ): Promise<number> {
    let deleted = 0;
    for (let start = 0; start < chunks.length; start += IDS_PER_REQUEST) {
      const filter: QdrantFilter = {
        should: chunks.slice(start, start + IDS_PER_REQUEST).map(({ chunkId, version }) => ({
          must: [
            { key: `${RAG_KEY}.group_id`, match: { value: chunkId } },
            { key: VERSION_KEY, range: { gte: version, lte: version } },
          ],
        })),
      };
      deleted += await this.deleteByFilter(collection, filter, "deleteChunkVersions");
    }
    return deleted;
  }

  async search(
    collection: string,
    vector: Float32Array,
    topK: number,
    filter?: SearchFilter,
  ): Promise<SearchHit[]> {
    assertTopK(topK);
    const mapped = toQdrantFilter(filter);
    await this.checkedShape(collection, "search", (shape) =>
      assertQueryDimension(collection, vector, shape.dimension),
    );
    if (mapped.matchesNothing) return [];
    const response = await this.call("search", collection, () =>
      this.client.query(collection, {
        query: Array.from(vector),
        limit: topK,
        with_payload: true,
        with_vector: false,
        ...(mapped.filter === undefined ? {} : { filter: mapped.filter }),
      }),
    );
    return response.points.map((point) => {
      const { payload, rag } = splitPayload(point.payload);
      const id = String(point.id);
      return {
        id,
        chunkId: typeof rag?.chunk_id === "string" ? rag.chunk_id : id,
        score: point.score,
        payload,
      };
    });
  }

  /** Every window of each chunk by its deterministic point id, then put together per chunk. */
  async parentTexts(collection: string, parents: ParentRef[]): Promise<Map<string, string>> {
    const ids = [...new Map(parents.map((p) => [p.chunkId, p])).values()].flatMap(({ chunkId, windows }) =>
      Array.from({ length: Math.max(1, windows) }, (_, index) =>
        index === 0 ? pointId(collection, chunkId) : windowPointId(collection, chunkId, index),
      ),
    );
    const stored: Array<{ group: string; point: StoredWindow }> = [];
    for (let start = 0; start < ids.length; start += IDS_PER_REQUEST) {
      const batch = ids.slice(start, start + IDS_PER_REQUEST);
      const points = await this.call("parentTexts", collection, () =>
        this.client.retrieve(collection, {
          ids: batch,
          with_payload: [WINDOW_TEXT_FIELD, RAG_KEY],
          with_vector: false,
        }),
      );
      for (const point of points) {
        const { payload, rag } = splitPayload(point.payload);
        if (typeof rag?.group_id !== "string") continue;
        stored.push({
          group: rag.group_id,
          point: {
            version: typeof rag.version === "number" ? rag.version : null,
            text: payload[WINDOW_TEXT_FIELD],
            window: rag.window,
          },
        });
      }
    }
    return parentTextsByGroup(stored);
  }

  async count(collection: string): Promise<number> {
    try {
      const result = await this.call("count", collection, () =>
        this.client.count(collection, { exact: true }),
      );
      return result.count;
    } catch (error) {
      if (isCollectionNotFound(error)) return 0;
      throw error;
    }
  }

  /** GET / (the version): Qdrant is reachable and answering. */
  async ping(): Promise<void> {
    await this.call("health check", "", () => this.client.versionInfo());
  }

  /** The client keeps no resources that need closing (its HTTP agent's idle sockets time out). */
  async close(): Promise<void> {
    this.shapes.clear();
    this.bindings.clear();
  }

  /** Fails for a Qdrant that would ignore the `update_filter` every write relies on. */
  private checkServer(collection: string): Promise<void> {
    this.serverChecked ??= this.call("check the server version", collection, () => this.client.versionInfo())
      .then((info) => assertVersionedWrites(info.version))
      .catch((error: unknown) => {
        this.serverChecked = undefined;
        throw error;
      });
    return this.serverChecked;
  }

  /** Upserts in batches under the request limits; each applies only over an older version of its point. */
  private async upsertVersioned(
    collection: string,
    points: VersionedPoint[],
    vectorBytes: number,
  ): Promise<void> {
    for (const batch of splitBatches(
      points,
      MAX_POINTS_PER_REQUEST,
      MAX_REQUEST_BYTES,
      // Bytes on the wire, not UTF-16 units: Korean text is 3 bytes a character in UTF-8.
      (p) => vectorBytes + Buffer.byteLength(JSON.stringify(p.payload)) + 64 + FILTER_BYTES_PER_POINT,
    )) {
      await this.call("upsert", collection, () =>
        this.client.upsert(collection, {
          wait: true,
          points: batch.map(({ id, vector, payload }) => ({ id, vector, payload })),
          update_filter: updateFilter(batch),
        }),
      );
    }
  }

  private async batchUpdate(collection: string, operations: SizedOperation[]): Promise<void> {
    for (const batch of splitBatches(operations, MAX_POINTS_PER_REQUEST, MAX_REQUEST_BYTES, (o) => o.bytes)) {
      await this.call("touch", collection, () =>
        this.client.batchUpdate(collection, { wait: true, operations: batch.map((o) => o.op) }),
      );
    }
  }

  /** Count, then delete, with the same filter: Qdrant's delete does not say how many it removed. */
  private async deleteByFilter(collection: string, filter: QdrantFilter, operation: string): Promise<number> {
    try {
      const { count } = await this.call(operation, collection, () =>
        this.client.count(collection, { filter, exact: true }),
      );
      if (count === 0) return 0;
      await this.call(operation, collection, () => this.client.delete(collection, { wait: true, filter }));
      return count;
    } catch (error) {
      if (isCollectionNotFound(error)) return 0;
      throw error;
    }
  }

  /** `_rag` of the points that exist among `ids`, retrieved in batches without vectors. */
  private async retrieveRag(
    collection: string,
    ids: string[],
    operation: string,
  ): Promise<Map<string, Partial<RagFields>>> {
    const unique = [...new Set(ids)];
    const result = new Map<string, Partial<RagFields>>();
    for (let start = 0; start < unique.length; start += IDS_PER_REQUEST) {
      const batch = unique.slice(start, start + IDS_PER_REQUEST);
      const points = await this.call(operation, collection, () =>
        this.client.retrieve(collection, { ids: batch, with_payload: [RAG_KEY], with_vector: false }),
      );
      for (const point of points) result.set(String(point.id), splitPayload(point.payload).rag ?? {});
    }
    return result;
  }

  /**
   * The shape of an existing collection (else collection_not_found) once `check` accepts it and the
   * binding: the cached ones, or, when there are none or they fail the check with a mismatch, the
   * collection read again (its name may reach another version since: a cutover elsewhere).
   */
  private async checkedShape(
    collection: string,
    operation: string,
    check: (shape: CollectionShape, binding: ModelBinding | null) => void,
  ): Promise<CollectionShape> {
    const cached = this.shapes.get(collection);
    if (cached !== undefined) {
      try {
        check(cached, this.bindings.get(collection) ?? null);
        return cached;
      } catch (error) {
        if (!isMismatch(error)) throw error;
      }
    }
    const info = await this.readCollection(collection, operation);
    if (info === undefined) {
      throw new AppError("collection_not_found", `Collection "${collection}" does not exist`, {
        details: { collection },
      });
    }
    const shape = shapeOf(collection, info);
    // A binding held for a Qdrant that keeps no metadata (see adoptCollection) stays held.
    const binding = bindingOf(info) ?? this.bindings.get(collection) ?? null;
    this.shapes.set(collection, shape);
    this.bindings.set(collection, binding);
    check(shape, binding);
    return shape;
  }

  /** Collection info, or undefined when Qdrant says it does not exist. */
  private async readCollection(
    collection: string,
    operation: string,
  ): Promise<Schemas["CollectionInfo"] | undefined> {
    try {
      return await this.call(operation, collection, () => this.client.getCollection(collection));
    } catch (error) {
      if (isCollectionNotFound(error)) return undefined;
      throw error;
    }
  }

  private async call<T>(operation: string, collection: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw this.classify(error, operation, collection);
    }
  }

  private classify(error: unknown, operation: string, collection: string): Error {
    const classified = classifyQdrantError(error, { operation, collection, timeoutMs: this.timeoutMs });
    // Deleted behind our back: forget the cached shape so the next call reads it again.
    if (isCollectionNotFound(classified)) {
      this.shapes.delete(collection);
      this.bindings.delete(collection);
    }
    return classified;
  }
}

/** What a cached shape or binding may refuse wrongly once the name reaches another version. */
function isMismatch(error: unknown): boolean {
  return (
    error instanceof AppError && (error.code === "model_mismatch" || error.code === "dimension_mismatch")
  );
}

function aliasIsCollection(alias: string, collection: string): AppError {
  return new AppError(
    "invalid_request",
    `"${alias}" is the name of a collection; an alias needs a name of its own`,
    { details: { alias, collection } },
  );
}
