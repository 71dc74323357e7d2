import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { type Context, OpenAPIBackend, type Options } from "openapi-backend";
import { REPO_ROOT } from "./paths.js";

export const QDRANT_SPEC_PATH = resolve(REPO_ROOT, "../shared/qdrant/openapi-v1.19.0.json");

/** One request as received, and whether it conformed to Qdrant's OpenAPI spec. */
export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string | string[]>;
  body: unknown;
  /** Size of the body on the wire (UTF-8 bytes). */
  bytes: number;
  operationId: string | undefined;
  valid: boolean;
  /** Validator errors (or the routing/parse failure) when invalid. */
  errors: unknown;
}

export interface Fault {
  /** Answer with this status and body (a Qdrant-style error body unless given). */
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Never answer (until the client gives up or the server closes). */
  hang?: boolean;
  /** Only a request this accepts gets the fault (default: the next valid request). */
  when?: (request: RecordedRequest) => boolean;
}

export interface QdrantContractServer {
  url: string;
  requests: RecordedRequest[];
  /**
   * The next `count` requests (after validation and recording; those `fault.when` accepts) get this
   * fault instead of an answer.
   */
  inject(fault: Fault, count?: number): void;
  /** Direct look at the in-memory collections (for assertions, never through the API); aliases resolve. */
  collection(name: string): MemoryCollection | undefined;
  /** The in-memory aliases: alias name → collection name. */
  aliases: Map<string, string>;
  /** The names of the collections themselves (aliases not among them), sorted. */
  collectionNames(): string[];
  close(): Promise<void>;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type PointId = number | string;

interface MemoryPoint {
  id: PointId;
  vector: number[];
  payload: Record<string, Json>;
}

export interface MemoryCollection {
  size: number;
  distance: "Cosine" | "Euclid" | "Dot" | "Manhattan";
  points: Map<string, MemoryPoint>;
  payloadSchema: Record<string, { data_type: string; points: number }>;
  /** The collection's metadata (Qdrant 1.16+): set on create, merged by PATCH, shown in its config. */
  metadata: Record<string, Json> | null;
}

/** A request error inside a handler, answered as Qdrant does: `{status: {error}}` with an HTTP status. */
class QdrantHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The spec as Ajv can read it. Pre-processing done, and why:
 * - bare `{nullable: true}` (263 of them, used as the "or null" branch of anyOf) → `{enum: [null]}`:
 *   Ajv only understands `nullable` next to a `type`.
 * - Qdrant's integer formats (uint, uint8, uint32, uint64) and uuid, date-time, partial-date-time, uri
 *   are registered as Ajv formats (see customizeAjv) rather than rewritten.
 * Nothing else trips Ajv.
 */
export function loadQdrantSpec(): Record<string, unknown> {
  const spec = JSON.parse(readFileSync(QDRANT_SPEC_PATH, "utf8")) as Record<string, unknown>;
  return rewriteNullable(spec) as Record<string, unknown>;
}

function rewriteNullable(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rewriteNullable);
  if (typeof node !== "object" || node === null) return node;
  const entries = Object.entries(node as Record<string, unknown>);
  if (entries.length === 1 && entries[0]?.[0] === "nullable" && entries[0][1] === true) {
    return { enum: [null] };
  }
  return Object.fromEntries(entries.map(([k, v]) => [k, rewriteNullable(v)]));
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type Ajv = Parameters<NonNullable<Options["customizeAjv"]>>[0];

function customizeAjv(ajv: Ajv): Ajv {
  const uint = (max: number) => ({
    type: "number" as const,
    validate: (n: number) => Number.isInteger(n) && n >= 0 && n <= max,
  });
  ajv.addFormat("uint", uint(Number.MAX_SAFE_INTEGER));
  ajv.addFormat("uint64", uint(Number.MAX_SAFE_INTEGER));
  ajv.addFormat("uint32", uint(2 ** 32 - 1));
  ajv.addFormat("uint8", uint(255));
  ajv.addFormat("uuid", UUID);
  ajv.addFormat("date-time", { type: "string", validate: (s: string) => !Number.isNaN(Date.parse(s)) });
  ajv.addFormat("partial-date-time", { type: "string", validate: () => true });
  ajv.addFormat("uri", { type: "string", validate: (s: string) => URL.canParse(s) });
  return ajv;
}

let sharedApi: Promise<OpenAPIBackend> | undefined;

/** Building the validators for the whole spec takes a moment: do it once per process. */
function validatorBackend(): Promise<OpenAPIBackend> {
  sharedApi ??= (async () => {
    const api = new OpenAPIBackend({
      definition: loadQdrantSpec() as never,
      validate: true,
      strict: false,
      customizeAjv,
    });
    await api.init();
    return api;
  })();
  return sharedApi;
}

/** The Qdrant version the double answers `GET /` with: the spec's, unless a test pretends otherwise. */
export async function startQdrantContractServer(
  /** `keepsMetadata: false` stands in for a Qdrant that accepts collection metadata and drops it. */
  options: { version?: string; keepsMetadata?: boolean } = {},
): Promise<QdrantContractServer> {
  const version = options.version ?? "1.19.0";
  const api = await validatorBackend();
  const collections = new Map<string, MemoryCollection>();
  const aliases = new Map<string, string>();
  const requests: RecordedRequest[] = [];
  const faults: Fault[] = [];
  const hanging = new Set<ServerResponse>();

  const server: Server = createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, errorBody(String(error)));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const url = new URL(req.url ?? "/", "http://localhost");
    const query: Record<string, string | string[]> = {};
    for (const [k, v] of url.searchParams) {
      const prev = query[k];
      query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
    }
    const record: RecordedRequest = {
      method: req.method ?? "GET",
      path: url.pathname,
      query,
      body: undefined,
      bytes: Buffer.byteLength(raw),
      operationId: undefined,
      valid: false,
      errors: undefined,
    };
    requests.push(record);
    if (raw.length > 0) {
      try {
        record.body = JSON.parse(raw);
      } catch (error) {
        record.errors = `invalid JSON: ${String(error)}`;
        send(res, 400, errorBody(`Format error in JSON body: ${String(error)}`));
        return;
      }
    }

    const request = {
      method: record.method,
      path: record.path,
      query,
      body: record.body,
      headers: req.headers as Record<string, string | string[]>,
    };
    const operation = api.router.matchOperation(request);
    if (operation === undefined) {
      record.errors = `no operation for ${record.method} ${record.path} in the spec`;
      send(res, 404, errorBody(String(record.errors)));
      return;
    }
    record.operationId = operation.operationId;
    const context = api.router.parseRequest(request, operation);
    const validation = api.validator.validateRequest(context, operation);
    if (!validation.valid) {
      record.errors = validation.errors;
      send(res, 400, {
        ...errorBody(`Validation error in request: ${JSON.stringify(validation.errors)}`),
        errors: validation.errors,
      });
      return;
    }
    record.valid = true;

    const faultIndex = faults.findIndex((f) => f.when === undefined || f.when(record));
    const fault = faultIndex < 0 ? undefined : faults.splice(faultIndex, 1)[0];
    if (fault !== undefined) {
      if (fault.hang) {
        hanging.add(res);
        res.on("close", () => hanging.delete(res));
        return;
      }
      send(
        res,
        fault.status ?? 500,
        fault.body ?? errorBody(`injected ${fault.status ?? 500}`),
        fault.headers,
      );
      return;
    }

    // The one operation whose answer is not wrapped in {result, status, time}.
    if (operation.operationId === "root") {
      send(res, 200, { title: "qdrant - vector search engine", version, commit: null });
      return;
    }
    try {
      const result = memoryQdrant(
        collections,
        aliases,
        options.keepsMetadata ?? true,
        operation.operationId ?? "",
        pathParam(context, "collection_name"),
        record.body as Record<string, Json> | undefined,
      );
      send(res, 200, { result, status: "ok", time: 0.0001 });
    } catch (error) {
      if (error instanceof QdrantHttpError) send(res, error.status, errorBody(error.message));
      else throw error;
    }
  }

  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    inject(fault, count = 1) {
      for (let i = 0; i < count; i++) faults.push(fault);
    },
    collection: (name) => collections.get(aliases.get(name) ?? name),
    aliases,
    collectionNames: () => [...collections.keys()].sort(),
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}

function pathParam(context: Context["request"], name: string): string {
  const value = (context.params as Record<string, unknown> | undefined)?.[name];
  return typeof value === "string" ? decodeURIComponent(value) : "";
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((ok, fail) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => ok(Buffer.concat(chunks).toString("utf8")));
    req.on("error", fail);
  });
}

function errorBody(message: string): { status: { error: string }; time: number } {
  return { status: { error: message }, time: 0 };
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(text);
}

// ---------------------------------------------------------------------------------------------------
// In-memory Qdrant: only what the store contract needs, with Qdrant's semantics and error messages.
// ---------------------------------------------------------------------------------------------------

function idKey(id: PointId): string {
  return typeof id === "number" ? `n:${id}` : `u:${id.toLowerCase()}`;
}

function normalizeId(id: PointId): PointId {
  return typeof id === "number" ? id : id.toLowerCase();
}

/** A name reaches its collection directly or through an alias, as in Qdrant. */
function requireCollection(
  collections: Map<string, MemoryCollection>,
  aliases: Map<string, string>,
  name: string,
): MemoryCollection {
  const c = collections.get(aliases.get(name) ?? name);
  if (c === undefined) throw new QdrantHttpError(404, `Not found: Collection \`${name}\` doesn't exist!`);
  return c;
}

const UPDATE_RESULT = { operation_id: 0, status: "completed" };

function aliasDescription(alias: string, target: string): { alias_name: string; collection_name: string } {
  return { alias_name: alias, collection_name: target };
}

function memoryQdrant(
  collections: Map<string, MemoryCollection>,
  aliases: Map<string, string>,
  keepsMetadata: boolean,
  operationId: string,
  name: string,
  body: Record<string, Json> | undefined,
): unknown {
  const b = body ?? {};
  switch (operationId) {
    case "update_aliases": {
      // As Qdrant applies them (TableOfContent::update_aliases): one action after another under one
      // lock, so no other request sees a half-done change, but not all-or-nothing: an action that
      // fails leaves the ones before it applied (a delete_alias then a failing create_alias leaves
      // the alias deleted). create_alias over an existing alias replaces it; over a collection's
      // name it is refused; delete_alias of an unknown alias does nothing.
      for (const action of (b.actions ?? []) as Array<Record<string, Record<string, string>>>) {
        if (action.delete_alias !== undefined) {
          aliases.delete(String(action.delete_alias.alias_name));
        } else if (action.create_alias !== undefined) {
          const alias = String(action.create_alias.alias_name);
          const target = String(action.create_alias.collection_name);
          // The target must be a collection, not an alias: Qdrant does not resolve it.
          if (!collections.has(target)) {
            throw new QdrantHttpError(404, `Not found: Collection \`${target}\` doesn't exist!`);
          }
          if (collections.has(alias)) {
            throw new QdrantHttpError(400, `Wrong input: Collection \`${alias}\` already exists!`);
          }
          aliases.set(alias, target);
        } else if (action.rename_alias !== undefined) {
          const from = String(action.rename_alias.old_alias_name);
          const target = aliases.get(from);
          if (target === undefined)
            throw new QdrantHttpError(404, `Not found: Alias ${from} does not exists!`);
          aliases.delete(from);
          aliases.set(String(action.rename_alias.new_alias_name), target);
        } else {
          throw new QdrantHttpError(
            501,
            `alias action ${Object.keys(action).join(",")} not implemented here`,
          );
        }
      }
      return true;
    }
    case "get_collections":
      // The collections themselves: aliases are not among them.
      return { collections: [...collections.keys()].map((n) => ({ name: n })) };
    case "get_collections_aliases":
      return { aliases: [...aliases].map(([alias, target]) => aliasDescription(alias, target)) };
    case "get_collection_aliases":
      // The aliases pointing at this collection (by its own name: Qdrant does not resolve one here).
      return {
        aliases: [...aliases]
          .filter(([, target]) => target === name)
          .map(([alias, target]) => aliasDescription(alias, target)),
      };
    case "delete_collection": {
      // By the collection's own name only (an alias's name deletes nothing); its aliases go with it.
      if (!collections.delete(name)) return false;
      for (const [alias, target] of [...aliases]) if (target === name) aliases.delete(alias);
      return true;
    }
    case "get_collection": {
      const c = requireCollection(collections, aliases, name);
      return {
        status: "green",
        optimizer_status: "ok",
        indexed_vectors_count: 0,
        points_count: c.points.size,
        segments_count: 1,
        config: {
          params: {
            vectors: { size: c.size, distance: c.distance },
            shard_number: 1,
            replication_factor: 1,
            write_consistency_factor: 1,
            on_disk_payload: true,
          },
          hnsw_config: { m: 16, ef_construct: 100, full_scan_threshold: 10000 },
          optimizer_config: {},
          wal_config: { wal_capacity_mb: 32, wal_segments_ahead: 0 },
          quantization_config: null,
          ...(c.metadata === null ? {} : { metadata: structuredClone(c.metadata) }),
        },
        payload_schema: c.payloadSchema,
      };
    }
    case "create_collection": {
      if (collections.has(name)) {
        throw new QdrantHttpError(409, `Wrong input: Collection \`${name}\` already exists!`);
      }
      if (aliases.has(name)) {
        throw new QdrantHttpError(
          400,
          `Wrong input: Can't create collection with name ${name}. Alias with the same name already exists`,
        );
      }
      const vectors = b.vectors as { size?: number; distance?: MemoryCollection["distance"] } | undefined;
      if (vectors?.size === undefined || vectors.distance === undefined) {
        throw new QdrantHttpError(400, "Wrong input: the contract server supports one unnamed vector only");
      }
      const metadata = b.metadata as Record<string, Json> | null | undefined;
      collections.set(name, {
        size: vectors.size,
        distance: vectors.distance,
        points: new Map(),
        payloadSchema: {},
        metadata:
          metadata === undefined || metadata === null || !keepsMetadata ? null : structuredClone(metadata),
      });
      return true;
    }
    case "update_collection": {
      // Only metadata is implemented: merged key by key, a null value removing its key (the spec's words).
      const c = requireCollection(collections, aliases, name);
      const unsupported = Object.keys(b).filter((k) => k !== "metadata" && b[k] !== null);
      if (unsupported.length > 0) {
        throw new QdrantHttpError(501, `update_collection ${unsupported.join(",")} is not implemented here`);
      }
      const metadata = b.metadata as Record<string, Json> | null | undefined;
      if (metadata !== undefined && metadata !== null && keepsMetadata) {
        const merged: Record<string, Json> = { ...(c.metadata ?? {}) };
        for (const [k, v] of Object.entries(metadata)) {
          if (v === null) delete merged[k];
          else merged[k] = structuredClone(v);
        }
        c.metadata = merged;
      }
      return true;
    }
    case "create_field_index": {
      const c = requireCollection(collections, aliases, name);
      const schema = b.field_schema;
      const type =
        typeof schema === "string" ? schema : ((schema as { type?: string } | null)?.type ?? "keyword");
      c.payloadSchema[String(b.field_name)] = { data_type: type, points: 0 };
      return UPDATE_RESULT;
    }
    case "upsert_points": {
      const c = requireCollection(collections, aliases, name);
      const points = (b.points ?? []) as Array<{
        id: PointId;
        vector: Json;
        payload?: Record<string, Json> | null;
      }>;
      if (!Array.isArray(points))
        throw new QdrantHttpError(400, "Wrong input: batch upserts are not supported here");
      if (b.update_mode !== undefined && b.update_mode !== null && b.update_mode !== "upsert") {
        throw new QdrantHttpError(
          501,
          `update_mode ${JSON.stringify(b.update_mode)} is not implemented here`,
        );
      }
      for (const p of points) {
        if (!Array.isArray(p.vector))
          throw new QdrantHttpError(400, "Wrong input: named vectors are not supported");
        if (p.vector.length !== c.size) {
          throw new QdrantHttpError(
            400,
            `Wrong input: Vector dimension error: expected dim: ${c.size}, got ${p.vector.length}`,
          );
        }
      }
      // update_filter, as the spec says: "Only points matching this filter will be updated ... New
      // points will be inserted regardless of the filter". Like Qdrant, the existing points to leave
      // alone are chosen against the state before the request.
      const kept = new Set<string>();
      if (b.update_filter !== undefined && b.update_filter !== null) {
        for (const p of points) {
          const existing = c.points.get(idKey(p.id));
          if (existing !== undefined && !matchesFilter(existing, b.update_filter)) kept.add(idKey(p.id));
        }
      }
      for (const p of points) {
        if (kept.has(idKey(p.id))) continue;
        c.points.set(idKey(p.id), {
          id: normalizeId(p.id),
          vector: storedVector(c, p.vector as number[]),
          payload: structuredClone(p.payload ?? {}),
        });
      }
      return UPDATE_RESULT;
    }
    case "get_points": {
      const c = requireCollection(collections, aliases, name);
      const ids = (b.ids ?? []) as PointId[];
      const out: unknown[] = [];
      for (const id of ids) {
        const p = c.points.get(idKey(id));
        if (p === undefined) continue;
        out.push({
          id: p.id,
          payload: selectPayload(p.payload, b.with_payload ?? true),
          vector: b.with_vector === true ? p.vector : null,
        });
      }
      return out;
    }
    case "scroll_points": {
      // Points in id order after `offset`, filtered, `limit` of them; next_page_offset resumes.
      const c = requireCollection(collections, aliases, name);
      const limit = typeof b.limit === "number" ? b.limit : 10;
      const after = b.offset === undefined || b.offset === null ? null : idKey(b.offset as PointId);
      const sorted = [...c.points.values()]
        .filter((p) => matchesFilter(p, b.filter) && (after === null || idKey(p.id) >= after))
        .sort((x, y) => idKey(x.id).localeCompare(idKey(y.id)));
      const page = sorted.slice(0, limit);
      return {
        points: page.map((p) => ({
          id: p.id,
          payload: selectPayload(p.payload, b.with_payload ?? true),
          vector: b.with_vector === true ? p.vector : null,
        })),
        next_page_offset: sorted[limit]?.id ?? null,
      };
    }
    case "count_points": {
      const c = requireCollection(collections, aliases, name);
      let n = 0;
      for (const p of c.points.values()) if (matchesFilter(p, b.filter)) n++;
      return { count: n };
    }
    case "delete_points": {
      const c = requireCollection(collections, aliases, name);
      deleteSelected(c, b);
      return UPDATE_RESULT;
    }
    case "batch_update": {
      const c = requireCollection(collections, aliases, name);
      const results: unknown[] = [];
      for (const op of (b.operations ?? []) as Array<Record<string, Record<string, Json>>>) {
        if (op.overwrite_payload !== undefined) {
          const spec = op.overwrite_payload;
          if (spec.key !== undefined && spec.key !== null) {
            throw new QdrantHttpError(501, "overwrite_payload with `key` is not implemented here");
          }
          for (const p of selectPoints(c, spec))
            p.payload = structuredClone(spec.payload as Record<string, Json>);
        } else if (op.set_payload !== undefined) {
          const spec = op.set_payload;
          const key = typeof spec.key === "string" ? spec.key : undefined;
          for (const p of selectPoints(c, spec))
            setPayload(p.payload, key, spec.payload as Record<string, Json>);
        } else if (op.delete !== undefined) {
          deleteSelected(c, op.delete);
        } else {
          throw new QdrantHttpError(501, `operation ${Object.keys(op).join(",")} not implemented here`);
        }
        results.push(UPDATE_RESULT);
      }
      return results;
    }
    case "query_points": {
      const c = requireCollection(collections, aliases, name);
      let query = b.query as Json;
      if (typeof query === "object" && query !== null && !Array.isArray(query) && "nearest" in query) {
        query = query.nearest as Json;
      }
      if (!Array.isArray(query) || b.prefetch !== undefined) {
        throw new QdrantHttpError(501, "only a plain nearest-vector query is implemented here");
      }
      if (query.length !== c.size) {
        throw new QdrantHttpError(
          400,
          `Wrong input: Vector dimension error: expected dim: ${c.size}, got ${query.length}`,
        );
      }
      const q = storedVector(c, query as number[]);
      const scored: Array<{ p: MemoryPoint; score: number }> = [];
      for (const p of c.points.values()) {
        if (matchesFilter(p, b.filter)) scored.push({ p, score: score(c.distance, q, p.vector) });
      }
      const ascending = c.distance === "Euclid" || c.distance === "Manhattan";
      scored.sort(
        (x, y) =>
          (ascending ? x.score - y.score : y.score - x.score) || idKey(x.p.id).localeCompare(idKey(y.p.id)),
      );
      const offset = typeof b.offset === "number" ? b.offset : 0;
      const limit = typeof b.limit === "number" ? b.limit : 10;
      return {
        points: scored.slice(offset, offset + limit).map(({ p, score }) => ({
          id: p.id,
          version: 0,
          score,
          payload: selectPayload(p.payload, b.with_payload ?? false),
          vector: b.with_vector === true ? p.vector : null,
        })),
      };
    }
    default:
      throw new QdrantHttpError(501, `${operationId} is valid but not implemented by the contract server`);
  }
}

/** Qdrant stores float32 and normalises cosine vectors on write (a zero vector stays zero). */
function storedVector(c: MemoryCollection, vector: number[]): number[] {
  const v = vector.map((x) => Math.fround(x));
  if (c.distance !== "Cosine") return v;
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return norm === 0 ? v : v.map((x) => Math.fround(x / norm));
}

function score(distance: MemoryCollection["distance"], a: number[], b: number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (distance === "Euclid") s += (x - y) ** 2;
    else if (distance === "Manhattan") s += Math.abs(x - y);
    else s += x * y;
  }
  return distance === "Euclid" ? Math.sqrt(s) : s;
}

function selectPayload(payload: Record<string, Json>, selector: Json): Record<string, Json> | null {
  if (selector === true) return structuredClone(payload);
  if (selector === false || selector === null) return null;
  const include = Array.isArray(selector)
    ? (selector as string[])
    : ((selector as { include?: string[] }).include ?? undefined);
  const exclude = Array.isArray(selector) ? undefined : (selector as { exclude?: string[] }).exclude;
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(payload)) {
    if (include !== undefined && !include.includes(k)) continue;
    if (exclude?.includes(k)) continue;
    out[k] = structuredClone(v);
  }
  return out;
}

function selectPoints(c: MemoryCollection, selector: Record<string, Json>): MemoryPoint[] {
  if (Array.isArray(selector.points)) {
    return (selector.points as PointId[]).map((id) => {
      const p = c.points.get(idKey(id));
      if (p === undefined) throw new QdrantHttpError(404, `Not found: No point with id ${id} found`);
      return p;
    });
  }
  if (selector.filter !== undefined && selector.filter !== null) {
    return [...c.points.values()].filter((p) => matchesFilter(p, selector.filter as Json));
  }
  throw new QdrantHttpError(400, "Wrong input: either points or filter is required");
}

function deleteSelected(c: MemoryCollection, selector: Record<string, Json>): void {
  if (Array.isArray(selector.points)) {
    for (const id of selector.points as PointId[]) c.points.delete(idKey(id));
    return;
  }
  for (const p of selectPoints(c, selector)) c.points.delete(idKey(p.id));
}

/**
 * Qdrant's set_payload: merge `source` into the payload, or into the object at the dotted `key`
 * (created, or replacing a value that is not an object, as Qdrant does). A null value removes the
 * key, as in Qdrant's merge.
 */
function setPayload(
  payload: Record<string, Json>,
  key: string | undefined,
  source: Record<string, Json>,
): void {
  let target = payload;
  for (const part of key?.split(".") ?? []) {
    if (part === "" || /[[\]]/.test(part)) {
      throw new QdrantHttpError(
        501,
        `set_payload key ${JSON.stringify(key)}: only dotted object keys are implemented here`,
      );
    }
    const next = target[part];
    if (typeof next !== "object" || next === null || Array.isArray(next)) target[part] = {};
    target = target[part] as Record<string, Json>;
  }
  for (const [k, v] of Object.entries(source)) {
    if (v === null) delete target[k];
    else target[k] = structuredClone(v);
  }
}

function asList(conditions: Json | undefined): Json[] {
  if (conditions === undefined || conditions === null) return [];
  return Array.isArray(conditions) ? conditions : [conditions];
}

function matchesFilter(p: MemoryPoint, filter: Json | undefined): boolean {
  if (filter === undefined || filter === null) return true;
  const f = filter as Record<string, Json>;
  if (!asList(f.must).every((c) => matchesCondition(p, c))) return false;
  if (asList(f.must_not).some((c) => matchesCondition(p, c))) return false;
  const should = asList(f.should);
  if (should.length > 0 && !should.some((c) => matchesCondition(p, c))) return false;
  if (f.min_should !== undefined && f.min_should !== null) {
    throw new QdrantHttpError(501, "min_should is not implemented here");
  }
  return true;
}

function matchesCondition(p: MemoryPoint, condition: Json): boolean {
  const c = condition as Record<string, Json>;
  if ("has_id" in c) return (c.has_id as PointId[]).some((id) => idKey(id) === idKey(p.id));
  if ("must" in c || "should" in c || "must_not" in c || "min_should" in c) return matchesFilter(p, c);
  if (typeof c.is_empty === "object" && c.is_empty !== null && !Array.isArray(c.is_empty)) {
    // Qdrant: true when the field is missing, null or an empty array.
    const key = (c.is_empty as { key: string }).key;
    return valuesAt(p.payload, key).every((v) => v === null || (Array.isArray(v) && v.length === 0));
  }
  if (typeof c.key !== "string")
    throw new QdrantHttpError(501, `condition ${JSON.stringify(c)} not implemented`);
  const values = valuesAt(p.payload, c.key);
  if (c.match !== undefined && c.match !== null) {
    const m = c.match as Record<string, Json>;
    if ("value" in m) return values.some((v) => sameValue(v, m.value as Json));
    if ("any" in m) return values.some((v) => (m.any as Json[]).some((a) => sameValue(v, a)));
    throw new QdrantHttpError(501, `match ${JSON.stringify(m)} not implemented`);
  }
  if (c.range !== undefined && c.range !== null) {
    const r = c.range as Record<string, number | null | undefined>;
    return values.some(
      (v) =>
        typeof v === "number" &&
        (r.gte == null || v >= r.gte) &&
        (r.gt == null || v > r.gt) &&
        (r.lte == null || v <= r.lte) &&
        (r.lt == null || v < r.lt),
    );
  }
  throw new QdrantHttpError(501, `condition ${JSON.stringify(c)} not implemented`);
}

/** Keyword, integer and boolean matches are type-exact: 1 ≠ "1" ≠ true. */
function sameValue(stored: Json, wanted: Json): boolean {
  if (typeof wanted === "number")
    return typeof stored === "number" && Number.isInteger(stored) && stored === wanted;
  return typeof stored === typeof wanted && stored === wanted;
}

/** Values at a dotted path; an array at the end contributes its elements. */
function valuesAt(payload: Record<string, Json>, key: string): Json[] {
  let current: Json | undefined = payload;
  for (const part of key.split(".")) {
    if (typeof current !== "object" || current === null || Array.isArray(current)) return [];
    current = (current as Record<string, Json>)[part];
    if (current === undefined) return [];
  }
  return Array.isArray(current) ? current : [current as Json];
}
