import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { versionName } from "../../src/domain/collection-versions.js";
import { AppError, ProcessingError } from "../../src/domain/errors.js";
import { pointId } from "../../src/domain/ids.js";
import { BINDING_METADATA_KEY } from "../../src/vector-store/qdrant/collection-binding.js";
import { classifyQdrantError, parseRetryAfter } from "../../src/vector-store/qdrant/qdrant-errors.js";
import { toQdrantFilter } from "../../src/vector-store/qdrant/qdrant-filter.js";
import { QdrantStore } from "../../src/vector-store/qdrant/qdrant-store.js";
import type { ChunkScanPage, ChunkWrite, StoredChunk } from "../../src/vector-store/vector-store.js";
import { type QdrantContractServer, startQdrantContractServer } from "../helpers/qdrant-contract-server.js";
import { putUnversionedPoints } from "../helpers/qdrant-unversioned.js";
import {
  asChunks,
  hasCode,
  makeRecord,
  pointsWrite,
  seed,
  stamped,
  testBinding,
  uniqueCollection,
  vectorStoreContract,
} from "./vector-store.contract.js";

const TIMEOUT_MS = 2_000;

describe("QdrantStore against the OpenAPI-validating contract server", () => {
  let server: QdrantContractServer;

  before(async () => {
    server = await startQdrantContractServer();
  });

  after(async () => {
    await server.close();
  });

  vectorStoreContract("QdrantStore (contract server)", async () => {
    const store = new QdrantStore({ url: server.url, timeoutMs: TIMEOUT_MS });
    return {
      store,
      seedUnversioned: (collection, records) =>
        putUnversionedPoints(server.url, undefined, collection, records),
      cleanup: () => store.close(),
    };
  });

  it("sent only requests that validate against Qdrant's OpenAPI spec, for every operation used", () => {
    const invalid = server.requests.filter((r) => !r.valid);
    assert.deepEqual(
      invalid.map((r) => ({ method: r.method, path: r.path, errors: r.errors })),
      [],
      "the adapter sent requests the spec rejects",
    );
    const operations = new Set(server.requests.map((r) => r.operationId));
    for (const op of [
      "get_collection",
      "create_collection",
      "create_field_index",
      "upsert_points",
      "get_points",
      "batch_update",
      "count_points",
      "delete_points",
      "query_points",
      "update_collection",
      "update_aliases",
      "get_collections_aliases",
      "get_collections",
      "delete_collection",
      "scroll_points",
    ]) {
      assert.ok(operations.has(op), `the contract suite never exercised ${op}`);
    }
    // Writes wait until applied: that is what makes "upsert, then ack" exactly-once.
    for (const r of server.requests) {
      if (
        ["upsert_points", "batch_update", "delete_points", "create_field_index"].includes(r.operationId ?? "")
      ) {
        assert.equal(r.query.wait, "true", `${r.operationId} without wait=true`);
      }
    }
  });
});

describe("the contract server's validator rejects non-conforming requests", () => {
  let server: QdrantContractServer;

  before(async () => {
    server = await startQdrantContractServer();
  });

  after(async () => {
    await server.close();
  });

  async function raw(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: unknown }> {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, json: await res.json() };
  }

  async function expectRejected(method: string, path: string, body: unknown): Promise<void> {
    const before = server.requests.length;
    const { status, json } = await raw(method, path, body);
    assert.equal(status, 400, JSON.stringify(json));
    assert.match((json as { status: { error: string } }).status.error, /Validation error/);
    const recorded = server.requests[before];
    assert.equal(recorded?.valid, false);
  }

  it("accepts a well-formed create and upsert (control)", async () => {
    const c = uniqueCollection();
    assert.equal(
      (await raw("PUT", `/collections/${c}`, { vectors: { size: 2, distance: "Cosine" } })).status,
      200,
    );
    const ok = await raw("PUT", `/collections/${c}/points?wait=true`, {
      points: [
        { id: pointId(c, "a"), vector: [1, 0], payload: { k: "v" } },
        { id: 7, vector: [0, 1] },
      ],
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
  });

  it("rejects a vector size that is not an integer ≥ 1", async () => {
    const c = uniqueCollection();
    await expectRejected("PUT", `/collections/${c}`, { vectors: { size: "384", distance: "Cosine" } });
    await expectRejected("PUT", `/collections/${c}`, { vectors: { size: 0, distance: "Cosine" } });
    await expectRejected("PUT", `/collections/${c}`, { vectors: { size: 3.5, distance: "Cosine" } });
    await expectRejected("PUT", `/collections/${c}`, { vectors: { size: 3, distance: "cosine" } });
    assert.equal(server.collection(c), undefined);
  });

  it("rejects point ids that are neither unsigned integers nor UUIDs", async () => {
    const c = uniqueCollection();
    await raw("PUT", `/collections/${c}`, { vectors: { size: 2, distance: "Cosine" } });
    for (const id of ["chunk-1", -1, 1.5, "6f1b3c2e-8d4a-5b7e-9c21", null]) {
      await expectRejected("PUT", `/collections/${c}/points?wait=true`, { points: [{ id, vector: [1, 0] }] });
    }
    await expectRejected("POST", `/collections/${c}/points`, { ids: ["not-a-uuid"] });
    assert.equal(server.collection(c)?.points.size, 0);
  });

  it("rejects an unknown field in a Filter (additionalProperties: false) and a mistyped match", async () => {
    const c = uniqueCollection();
    await raw("PUT", `/collections/${c}`, { vectors: { size: 2, distance: "Cosine" } });
    await expectRejected("POST", `/collections/${c}/points/count`, {
      filter: { must: [], and: [] },
      exact: true,
    });
    await expectRejected("POST", `/collections/${c}/points/count`, {
      filter: { must: [{ key: "n", match: { value: 1.5 } }] },
    });
    await expectRejected("POST", `/collections/${c}/points/count`, {
      filter: { must: [{ key: "n", match: { any: ["a", "a"] } }] },
    });
  });

  it("rejects malformed versioned-write requests: update_filter, is_empty, set_payload key, index type", async () => {
    const c = uniqueCollection();
    await raw("PUT", `/collections/${c}`, { vectors: { size: 2, distance: "Cosine" } });
    const point = { id: 1, vector: [1, 0] };
    await expectRejected("PUT", `/collections/${c}/points?wait=true`, {
      points: [point],
      update_filter: { must: [], unknown: [] },
    });
    await expectRejected("PUT", `/collections/${c}/points?wait=true`, {
      points: [point],
      update_filter: { should: [{ is_empty: "_rag.version" }] },
    });
    await expectRejected("PUT", `/collections/${c}/points?wait=true`, {
      points: [point],
      update_filter: { should: [{ key: "_rag.version", range: { lt: [3] } }] },
    });
    await expectRejected("PUT", `/collections/${c}/points?wait=true`, {
      points: [point],
      update_mode: "sometimes",
    });
    await expectRejected("POST", `/collections/${c}/points/batch?wait=true`, {
      operations: [{ set_payload: { payload: { version: 1 }, key: 5, filter: { must: [] } } }],
    });
    await expectRejected("PUT", `/collections/${c}/index?wait=true`, {
      field_name: "_rag.version",
      field_schema: "int",
    });
    assert.equal(server.collection(c)?.points.size, 0);
    assert.deepEqual(server.collection(c)?.payloadSchema, {});
  });

  it("rejects a bad query parameter and a missing required body field", async () => {
    const c = uniqueCollection();
    await expectRejected("PUT", `/collections/${c}/points?wait=maybe`, { points: [] });
    await expectRejected("PUT", `/collections/${c}/points`, { vectors: [[1, 0]] });
    await expectRejected("POST", `/collections/${c}/points/query`, { query: [1, 0], limit: -1 });
  });
});

describe("the contract server's in-memory Qdrant follows the spec's semantics", () => {
  let server: QdrantContractServer;
  let c: string;

  before(async () => {
    server = await startQdrantContractServer();
  });

  after(async () => {
    await server.close();
  });

  async function call(method: string, path: string, body?: unknown): Promise<unknown> {
    const res = await fetch(`${server.url}/collections/${c}${path}`, {
      method,
      headers: { "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json = (await res.json()) as { result?: unknown; status: unknown };
    assert.equal(res.status, 200, JSON.stringify(json));
    return json.result;
  }

  const payloadOf = (id: number) => server.collection(c)?.points.get(`n:${id}`)?.payload;
  const count = async (filter: unknown) =>
    ((await call("POST", "/points/count", { filter, exact: true })) as { count: number }).count;

  beforeEach(async () => {
    c = uniqueCollection();
    await call("PUT", "", { vectors: { size: 2, distance: "Cosine" } });
  });

  it("upsert with update_filter updates only matching points and inserts new ones regardless", async () => {
    await call("PUT", "/points?wait=true", {
      points: [
        { id: 1, vector: [1, 0], payload: { v: 1 } },
        { id: 2, vector: [1, 0], payload: { v: 5 } },
      ],
    });
    await call("PUT", "/points?wait=true", {
      points: [
        { id: 1, vector: [0, 1], payload: { v: 3 } },
        { id: 2, vector: [0, 1], payload: { v: 3 } },
        { id: 3, vector: [0, 1], payload: { v: 3 } },
      ],
      update_filter: { must: [{ key: "v", range: { lt: 3 } }] },
    });
    assert.deepEqual([payloadOf(1), payloadOf(2), payloadOf(3)], [{ v: 3 }, { v: 5 }, { v: 3 }]);
  });

  it("update_filter is judged against the state before the request, even for a repeated id", async () => {
    await call("PUT", "/points?wait=true", { points: [{ id: 1, vector: [1, 0], payload: { v: 1 } }] });
    await call("PUT", "/points?wait=true", {
      points: [
        { id: 1, vector: [1, 0], payload: { v: 9 } },
        { id: 1, vector: [1, 0], payload: { v: 2 } },
      ],
      update_filter: { must: [{ key: "v", range: { lt: 5 } }] },
    });
    assert.deepEqual(payloadOf(1), { v: 2 }, "both passed the filter; the last one wins");
  });

  it("is_empty matches a missing, null or empty-array field, not a value", async () => {
    await call("PUT", "/points?wait=true", {
      points: [
        { id: 1, vector: [1, 0], payload: {} },
        { id: 2, vector: [1, 0], payload: { r: { version: null } } },
        { id: 3, vector: [1, 0], payload: { r: { version: [] } } },
        { id: 4, vector: [1, 0], payload: { r: { version: 0 } } },
      ],
    });
    assert.equal(await count({ must: [{ is_empty: { key: "r.version" } }] }), 3);
    assert.equal(await count({ must_not: [{ is_empty: { key: "r.version" } }] }), 1);
  });

  it("nested should/must filters combine has_id, range and is_empty", async () => {
    await call("PUT", "/points?wait=true", {
      points: [
        { id: 1, vector: [1, 0], payload: { v: 4 } },
        { id: 2, vector: [1, 0], payload: { v: 4 } },
        { id: 3, vector: [1, 0], payload: {} },
      ],
    });
    const older = (v: number) => ({ should: [{ key: "v", range: { lt: v } }, { is_empty: { key: "v" } }] });
    const filter = {
      should: [{ must: [{ has_id: [1] }, older(4)] }, { must: [{ has_id: [2, 3] }, older(5)] }],
    };
    assert.equal(await count(filter), 2, "point 1 is not older than 4; 2 is older than 5; 3 has no v");
  });

  it("set_payload with a key merges into that nested object, creating it; null removes a field", async () => {
    await call("PUT", "/points?wait=true", {
      points: [
        { id: 1, vector: [1, 0], payload: { x: 1, _rag: { a: 1, b: 2 } } },
        { id: 2, vector: [1, 0], payload: { x: 2 } },
        { id: 3, vector: [1, 0], payload: { x: 3, _rag: "not an object" } },
      ],
    });
    await call("POST", "/points/batch?wait=true", {
      operations: [
        {
          set_payload: { payload: { b: 3, a: null }, key: "_rag", filter: { must: [{ has_id: [1, 2, 3] }] } },
        },
      ],
    });
    assert.deepEqual(payloadOf(1), { x: 1, _rag: { b: 3 } });
    assert.deepEqual(payloadOf(2), { x: 2, _rag: { b: 3 } });
    assert.deepEqual(payloadOf(3), { x: 3, _rag: { b: 3 } });
  });

  it("overwrite_payload replaces the whole payload of the points its filter selects", async () => {
    await call("PUT", "/points?wait=true", {
      points: [
        { id: 1, vector: [1, 0], payload: { x: 1, keep: false } },
        { id: 2, vector: [1, 0], payload: { x: 2 } },
      ],
    });
    await call("POST", "/points/batch?wait=true", {
      operations: [
        { overwrite_payload: { payload: { y: 1 }, filter: { must: [{ key: "x", match: { value: 1 } }] } } },
      ],
    });
    assert.deepEqual([payloadOf(1), payloadOf(2)], [{ y: 1 }, { x: 2 }]);
  });

  it("records an integer payload index with its type", async () => {
    await call("PUT", "/index?wait=true", { field_name: "_rag.version", field_schema: "integer" });
    const info = (await call("GET", "")) as { payload_schema: Record<string, { data_type: string }> };
    assert.equal(info.payload_schema["_rag.version"]?.data_type, "integer");
  });
});

describe("QdrantStore error classification", () => {
  let server: QdrantContractServer;
  let store: QdrantStore;
  let c: string;

  before(async () => {
    server = await startQdrantContractServer();
    store = new QdrantStore({ url: server.url, timeoutMs: 500 });
    c = uniqueCollection();
    await store.ensureCollection({ name: c, dimension: 2, distance: "Cosine" });
  });

  after(async () => {
    await store.close();
    await server.close();
  });

  async function failure(promise: Promise<unknown>): Promise<unknown> {
    try {
      await promise;
    } catch (error) {
      return error;
    }
    assert.fail("expected a failure");
  }

  it("429 with Retry-After → retryable with retryAfterMs", async () => {
    server.inject({
      status: 429,
      headers: { "retry-after": "3" },
      body: { status: { error: "Too many requests" } },
    });
    const error = await failure(store.writeChunks(c, asChunks([makeRecord(c, "a", [1, 0])])));
    assert.ok(error instanceof ProcessingError, String(error));
    assert.equal(error.retryable, true);
    assert.equal(error.retryAfterMs, 3000);
    assert.match(error.message, new RegExp(`upsert on collection "${c}"`));
  });

  it("429 without Retry-After → retryable", async () => {
    server.inject({ status: 429, body: { status: { error: "Too many requests" } } });
    const error = await failure(store.count(c));
    assert.ok(error instanceof ProcessingError && error.retryable, String(error));
    assert.match(error.message, /HTTP 429: Too many requests/);
  });

  it("500 → retryable, with Qdrant's message", async () => {
    server.inject({ status: 500, body: { status: { error: "Service internal error: disk full" }, time: 0 } });
    const error = await failure(store.search(c, Float32Array.from([1, 0]), 3));
    assert.ok(error instanceof ProcessingError, String(error));
    assert.equal(error.retryable, true);
    assert.match(error.message, /search on collection .*HTTP 500: Service internal error: disk full/);
  });

  it("a hung request times out after about timeoutMs → retryable", async () => {
    server.inject({ hang: true });
    const started = Date.now();
    const error = await failure(store.writeChunks(c, asChunks([makeRecord(c, "a", [1, 0])])));
    const elapsed = Date.now() - started;
    assert.ok(error instanceof ProcessingError, String(error));
    assert.equal(error.retryable, true);
    assert.match(error.message, /timed out after 500 ms/);
    assert.ok(elapsed >= 450 && elapsed < 2_000, `took ${elapsed} ms`);
  });

  it("an unreachable server → retryable", async () => {
    const gone = await startQdrantContractServer();
    await gone.close();
    const lost = new QdrantStore({ url: gone.url, timeoutMs: 500 });
    const error = await failure(lost.writeChunks(c, asChunks([makeRecord(c, "a", [1, 0])])));
    assert.ok(error instanceof ProcessingError && error.retryable, String(error));
    assert.match(error.message, /unreachable/);
  });

  it("400 → permanent, carrying Qdrant's message", async () => {
    server.inject({
      status: 400,
      body: { status: { error: "Wrong input: Payload field too deep" }, time: 0 },
    });
    const error = await failure(store.writeChunks(c, asChunks([makeRecord(c, "a", [1, 0])])));
    assert.ok(error instanceof ProcessingError, String(error));
    assert.equal(error.retryable, false);
    assert.match(error.message, /HTTP 400: Wrong input: Payload field too deep/);
  });

  it("a 400 naming a vector dimension → AppError dimension_mismatch with Qdrant's message", async () => {
    server.inject({
      status: 400,
      body: { status: { error: "Wrong input: Vector dimension error: expected dim: 2, got 3" }, time: 0 },
    });
    const error = await failure(store.writeChunks(c, asChunks([makeRecord(c, "a", [1, 0])])));
    hasCode("dimension_mismatch")(error);
    assert.match((error as Error).message, /expected dim: 2, got 3/);
  });

  it("a query of the wrong size reaching Qdrant is dimension_mismatch (shape not cached)", async () => {
    const fresh = new QdrantStore({ url: server.url, timeoutMs: 500 });
    // Another process's view: the store has not cached this collection's shape yet, and the server answers.
    server.inject({
      status: 400,
      body: { status: { error: "Wrong input: Vector dimension error: expected dim: 2, got 3" } },
    });
    const error = await failure(fresh.search(c, Float32Array.from([1, 0, 0]), 1));
    hasCode("dimension_mismatch")(error);
  });

  it("ensureCollection on an existing collection of another size → dimension_mismatch, collection untouched", async () => {
    await seed(store, c, [makeRecord(c, "keep", [1, 0])]);
    const other = new QdrantStore({ url: server.url, timeoutMs: 500 });
    const mark = server.requests.length;
    await assert.rejects(
      other.ensureCollection({ name: c, dimension: 3, distance: "Cosine" }),
      (err: unknown) => {
        hasCode("dimension_mismatch")(err);
        assert.match(
          (err as Error).message,
          /dimension 2 and distance Cosine.*requested dimension 3 and distance Cosine/,
        );
        return true;
      },
    );
    const sent = server.requests.slice(mark).map((r) => r.operationId);
    assert.deepEqual(sent, ["root", "get_collection"], "only read: never created, recreated or deleted");
    assert.equal(server.collection(c)?.size, 2);
    assert.equal(server.collection(c)?.points.size, 1);
  });

  it("a Qdrant too old to honour update_filter is refused before anything is created", async () => {
    const old = await startQdrantContractServer({ version: "1.15.3" });
    try {
      const refused = new QdrantStore({ url: old.url, timeoutMs: 500 });
      const name = uniqueCollection();
      const error = await failure(refused.ensureCollection({ name, dimension: 2, distance: "Cosine" }));
      assert.ok(error instanceof ProcessingError && !error.retryable, String(error));
      assert.match(error.message, /Qdrant 1\.15\.3 is too old: versioned writes need update_filter/);
      assert.equal(old.collection(name), undefined);
      assert.deepEqual(
        old.requests.map((r) => r.operationId),
        ["root"],
      );
    } finally {
      await old.close();
    }
  });

  it("two stores creating the same collection at once both succeed (409 race)", async () => {
    const name = uniqueCollection();
    const a = new QdrantStore({ url: server.url, timeoutMs: 2_000 });
    const b = new QdrantStore({ url: server.url, timeoutMs: 2_000 });
    await Promise.all([
      a.ensureCollection({ name, dimension: 4, distance: "Dot" }),
      b.ensureCollection({ name, dimension: 4, distance: "Dot" }),
    ]);
    assert.equal(server.collection(name)?.distance, "Dot");
    assert.deepEqual(server.collection(name)?.payloadSchema, {
      "_rag.chunk_id": { data_type: "keyword", points: 0 },
      "_rag.content_hash": { data_type: "keyword", points: 0 },
      "_rag.document_id": { data_type: "keyword", points: 0 },
      "_rag.group_id": { data_type: "keyword", points: 0 },
      "_rag.version": { data_type: "integer", points: 0 },
      parent_chunk_id: { data_type: "keyword", points: 0 },
    });
  });
});

describe("QdrantStore specifics", () => {
  let server: QdrantContractServer;
  let store: QdrantStore;

  before(async () => {
    server = await startQdrantContractServer();
    store = new QdrantStore({ url: server.url, timeoutMs: 2_000 });
  });

  after(async () => {
    await store.close();
    await server.close();
  });

  it("a Qdrant that drops collection metadata: ingest goes on, the process holds the binding and checks its writes", async () => {
    const forgetful = await startQdrantContractServer({ keepsMetadata: false });
    const local = new QdrantStore({ url: forgetful.url, timeoutMs: 2_000 });
    try {
      const c = uniqueCollection();
      const binding = testBinding("model-a", 2);
      await local.ensureCollection({ name: c, dimension: 2, distance: "Cosine", binding });
      assert.equal(forgetful.collection(c)?.metadata, null, "nothing recorded");
      assert.equal((await local.describeCollection(c))?.binding, null, "and nothing shown as recorded");
      // The binding held for the process still keeps another profile's points out.
      await assert.rejects(
        local.writeChunks(c, [stamped(pointsWrite(c, "x", [[1, 0]]), testBinding("model-b", 2).fingerprint)]),
        hasCode("model_mismatch"),
      );
    } finally {
      await local.close();
      await forgetful.close();
    }
  });

  /** Plain REST against the double, as an operator (or another tool) would call Qdrant. */
  async function rest(method: string, path: string, body?: unknown): Promise<unknown> {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json = (await response.json()) as { result?: unknown; status?: unknown };
    if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${JSON.stringify(json)}`);
    return json.result;
  }

  it("creates a collection as its version 1 behind an alias of its name; a later version under its own name", async () => {
    const c = uniqueCollection();
    await store.ensureCollection({ name: c, dimension: 2, distance: "Cosine" });
    await store.ensureCollection({ name: versionName(c, 2), dimension: 2, distance: "Cosine" });
    assert.deepEqual(
      server.collectionNames().filter((n) => n.startsWith(c)),
      [`${c}__v1`, `${c}__v2`],
    );
    assert.equal(server.aliases.get(c), `${c}__v1`);
    assert.equal(server.aliases.has(`${c}__v2`), false);
    // Every call by the name reaches version 1 through the alias, payload indexes included.
    await seed(store, c, [makeRecord(c, "a", [1, 0])]);
    assert.equal(server.collection(`${c}__v1`)?.points.size, 1);
    assert.ok(Object.keys(server.collection(`${c}__v1`)?.payloadSchema ?? {}).includes("_rag.version"));
    assert.equal((await store.describeCollection(c))?.name, c);
    assert.equal(await store.resolveAlias(c), c, "version 1 is the collection's own name");
    // A crash between the create and the alias: the next ensure completes it.
    const half = uniqueCollection();
    await rest("PUT", `/collections/${half}__v1`, { vectors: { size: 2, distance: "Cosine" } });
    await store.ensureCollection({ name: half, dimension: 2, distance: "Cosine" });
    assert.equal(server.aliases.get(half), `${half}__v1`);
  });

  it("cutover and rollback are each one POST /collections/aliases with delete_alias + create_alias, after one read of the target", async () => {
    const c = uniqueCollection();
    const v2 = versionName(c, 2);
    await store.ensureCollection({ name: c, dimension: 2, distance: "Cosine" });
    await store.ensureCollection({ name: v2, dimension: 2, distance: "Cosine" });
    const swap = async (to: string) => {
      const mark = server.requests.length;
      await store.setAlias(c, to);
      return server.requests.slice(mark);
    };
    const cutover = await swap(v2);
    assert.deepEqual(
      cutover.map((r) => `${r.method} ${r.path}`),
      [`GET /collections/${v2}`, "POST /collections/aliases"],
      "the target read, then the swap; nothing else",
    );
    assert.ok(
      cutover.every((r) => r.valid),
      "every request validates against the spec",
    );
    assert.deepEqual(cutover[1]?.body, {
      actions: [
        { delete_alias: { alias_name: c } },
        { create_alias: { collection_name: v2, alias_name: c } },
      ],
    });
    assert.equal(server.aliases.get(c), v2);
    assert.equal(await store.resolveAlias(c), v2);

    const rollback = await swap(c);
    assert.deepEqual(
      rollback.map((r) => r.operationId),
      ["get_collection", "update_aliases"],
    );
    assert.deepEqual(rollback[1]?.body, {
      actions: [
        { delete_alias: { alias_name: c } },
        { create_alias: { collection_name: `${c}__v1`, alias_name: c } },
      ],
    });
    assert.equal(await store.resolveAlias(c), c);
  });

  it("why the target is read first: Qdrant's alias actions are not all-or-nothing", async () => {
    const c = uniqueCollection();
    await store.ensureCollection({ name: c, dimension: 2, distance: "Cosine" });
    // Sent as is, a swap to a missing collection deletes the alias and fails the create.
    await assert.rejects(
      rest("POST", "/collections/aliases", {
        actions: [
          { delete_alias: { alias_name: c } },
          { create_alias: { collection_name: `${c}__v3`, alias_name: c } },
        ],
      }),
      /HTTP 404/,
    );
    assert.equal(server.aliases.has(c), false, "the double applies the delete, as Qdrant does");
  });

  it("a collection made before versions (a collection of the name itself) keeps working; its cutover is 409 version_migration_required until it moves to name__v1", async () => {
    const c = uniqueCollection();
    const v2 = versionName(c, 2);
    // As an older server created it: a collection named c, no alias.
    await rest("PUT", `/collections/${c}`, { vectors: { size: 2, distance: "Cosine" } });
    await store.ensureCollection({ name: c, dimension: 2, distance: "Cosine" });
    await seed(store, c, [makeRecord(c, "old", [1, 0])]);
    assert.equal(await store.resolveAlias(c), c);
    const scanned = await store.scanChunks(c, null, 10);
    assert.deepEqual(
      scanned.chunks.map((chunk) => chunk.chunkId),
      ["old"],
    );
    await store.ensureCollection({ name: v2, dimension: 2, distance: "Cosine" });
    await seed(store, v2, [makeRecord(v2, "old", [0, 1])]);

    await assert.rejects(store.setAlias(c, v2), (error: unknown) => {
      hasCode("version_migration_required")(error);
      assert.match((error as Error).message, new RegExp(`until version 1 has moved to "${c}__v1"`));
      return true;
    });
    assert.ok(server.collectionNames().includes(c), "nothing changed");
    assert.equal(server.aliases.has(c), false);
    // Version 1 is the collection c itself: listed, and never deleted while its name reaches it.
    assert.deepEqual(
      (await store.listVersions(c)).map((v) => [v.name, v.points]),
      [
        [c, 1],
        [v2, 1],
      ],
    );
    await assert.rejects(store.deleteCollection(c), hasCode("version_active"));
    const [before] = await store.search(c, Float32Array.from([1, 0]), 1);
    assert.ok(before?.chunkId === "old" && before.score > 0.99, "the name still reaches the old collection");

    // The README's one-time move, with the copy a snapshot recovery would make: c__v1 holds c's
    // points, c is deleted, and the cutover then works, with the rollback reaching the copy.
    await rest("PUT", `/collections/${c}__v1`, { vectors: { size: 2, distance: "Cosine" } });
    const points = (await rest("POST", `/collections/${c}/points/scroll`, {
      limit: 100,
      with_payload: true,
      with_vector: true,
    })) as { points: unknown[] };
    await rest("PUT", `/collections/${c}__v1/points?wait=true`, { points: points.points });
    await rest("DELETE", `/collections/${c}`);
    await store.setAlias(c, v2);
    assert.equal(await store.resolveAlias(c), v2);
    assert.equal((await store.search(c, Float32Array.from([0, 1]), 1))[0]?.chunkId, "old");
    assert.deepEqual(
      (await store.listVersions(c)).map((v) => [v.name, v.points]),
      [
        [c, 1],
        [v2, 1],
      ],
      "version 1 is now the collection c__v1, still listed as c",
    );
    await store.setAlias(c, c);
    assert.equal(server.aliases.get(c), `${c}__v1`);
    const [back] = await store.search(c, Float32Array.from([1, 0]), 1);
    assert.ok(back?.chunkId === "old" && back.score > 0.99, "the rollback reaches the moved version 1");
  });

  it("a store that cached a collection follows its name to the version another process cut over to (another model and size)", async () => {
    const c = uniqueCollection();
    const v2 = versionName(c, 2);
    const a = testBinding("model-a", 2);
    const b = testBinding("model-b", 3);
    const worker = new QdrantStore({ url: server.url, timeoutMs: 2_000 });
    try {
      await worker.ensureCollection({ name: c, dimension: 2, distance: "Cosine", binding: a });
      await worker.writeChunks(c, [stamped(pointsWrite(c, "x", [[1, 0]]), a.fingerprint)]);
      assert.equal((await worker.search(c, Float32Array.from([1, 0]), 1)).length, 1);
      // Another process re-embeds into version 2 with model b and cuts over.
      await store.ensureCollection({ name: v2, dimension: 3, distance: "Cosine", binding: b });
      await store.setAlias(c, v2);
      // The worker, restarted on model b, still holds version 1's shape and binding under the name.
      await worker.ensureCollection({ name: c, dimension: 3, distance: "Cosine", binding: b });
      assert.deepEqual(
        await worker.writeChunks(c, [stamped(pointsWrite(c, "y", [[0, 0, 1]]), b.fingerprint)]),
        ["written"],
      );
      assert.equal(server.collection(v2)?.points.size, 1);
      const [hit] = await worker.search(c, Float32Array.from([0, 0, 1]), 1);
      assert.equal(hit?.chunkId, "y");
      // Model a's points are refused by the name now, after one more read.
      await assert.rejects(
        worker.writeChunks(c, [stamped(pointsWrite(c, "z", [[1, 0, 0]]), a.fingerprint)]),
        hasCode("model_mismatch"),
      );
    } finally {
      await worker.close();
    }
  });

  it("scanChunks: points of other writers come back without text, and integer point ids page too", async () => {
    const c = uniqueCollection();
    await store.ensureCollection({ name: c, dimension: 2, distance: "Cosine" });
    await seed(store, c, [makeRecord(c, "ours", [1, 0], { payload: { text: "our text" } })]);
    await rest("PUT", `/collections/${c}/points?wait=true`, {
      points: [
        { id: 7, vector: [0, 1], payload: { text: "someone else's" } },
        { id: 12, vector: [1, 1], payload: {} },
      ],
    });
    const chunks: StoredChunk[] = [];
    let after: string | null = null;
    do {
      const page: ChunkScanPage = await store.scanChunks(c, after, 1);
      chunks.push(...page.chunks);
      after = page.nextCursor;
    } while (after !== null);
    assert.deepEqual(chunks.map((chunk) => [chunk.chunkId, chunk.text]).sort(), [
      ["12", null],
      ["7", null],
      ["ours", "our text"],
    ]);
  });

  it("keeps the binding in the collection's own metadata, adopts with one PATCH, and stamps _rag.model_fingerprint", async () => {
    const c = uniqueCollection();
    const binding = testBinding("model-a", 2);
    await store.ensureCollection({ name: c, dimension: 2, distance: "Cosine", binding });
    const create = server.requests.find(
      (r) => r.operationId === "create_collection" && r.path.endsWith(`/${c}__v1`),
    );
    assert.ok(create?.valid, "the create request validates against the spec");
    assert.deepEqual((create.body as { metadata: unknown }).metadata, { [BINDING_METADATA_KEY]: binding });
    assert.deepEqual(server.collection(c)?.metadata, { [BINDING_METADATA_KEY]: binding });

    await store.writeChunks(c, [stamped(pointsWrite(c, "a", [[1, 0]]), binding.fingerprint)]);
    const point = server.collection(c)?.points.get(`u:${pointId(c, "a")}`);
    assert.equal(
      (point?.payload._rag as { model_fingerprint?: string } | undefined)?.model_fingerprint,
      binding.fingerprint,
    );

    // A collection from before bindings, with metadata of its owner's own: adoption merges beside it.
    const legacy = uniqueCollection();
    await fetch(`${server.url}/collections/${legacy}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ vectors: { size: 2, distance: "Cosine" }, metadata: { team: "search" } }),
    });
    const fresh = new QdrantStore({ url: server.url, timeoutMs: 2_000 });
    const before = server.requests.length;
    await fresh.ensureCollection({ name: legacy, dimension: 2, distance: "Cosine", binding });
    const patches = server.requests.slice(before).filter((r) => r.operationId === "update_collection");
    assert.equal(patches.length, 1);
    assert.ok(patches[0]?.valid);
    assert.deepEqual(server.collection(legacy)?.metadata, {
      team: "search",
      [BINDING_METADATA_KEY]: { ...binding, adopted: true },
    });
    await assert.rejects(
      fresh.ensureCollection({
        name: legacy,
        dimension: 2,
        distance: "Cosine",
        binding: testBinding("b", 2),
      }),
      hasCode("model_mismatch"),
    );
    await fresh.close();
  });

  it("a write that fails before its fingerprint point leaves the old fingerprint; the retry completes it", async () => {
    const c = uniqueCollection();
    await store.ensureCollection({ name: c, dimension: 2, distance: "Cosine" });
    const old = pointsWrite(
      c,
      "p",
      [
        [1, 0],
        [0, 1],
        [1, 1],
        [1, 2],
      ],
      { contentHash: "old", version: 1 },
    );
    await store.writeChunks(c, [old]);
    const fingerprint = pointId(c, "p");
    server.inject({
      status: 500,
      when: (r) =>
        r.operationId === "upsert_points" &&
        (r.body as { points: Array<{ id: string }> }).points.some((p) => p.id === fingerprint),
    });
    const newer = pointsWrite(
      c,
      "p",
      [
        [0, 1],
        [1, 0],
      ],
      { contentHash: "new", version: 2 },
    );
    await assert.rejects(store.writeChunks(c, [newer]), /HTTP 500/);
    assert.deepEqual(
      (await store.fingerprints(c, [fingerprint])).get(fingerprint),
      { contentHash: "old", payloadHash: old.records[0]?.payloadHash, version: 1 },
      "the chunk still reads as the old content, so the retry re-embeds it",
    );
    assert.deepEqual(await store.writeChunks(c, [newer]), ["written"]);
    assert.equal(await store.count(c), 2, "the old windows 2 and 3 are gone");
  });

  it("a batch of chunks takes a few requests per step, however many chunks it holds", async () => {
    const c = uniqueCollection();
    await store.ensureCollection({ name: c, dimension: 2, distance: "Cosine" });
    const writes = (version: number) =>
      Array.from({ length: 200 }, (_, i) =>
        i % 2 === 0
          ? pointsWrite(c, `s${i}`, [[1, i]], { version })
          : pointsWrite(
              c,
              `w${i}`,
              [
                [1, i],
                [i, 1],
                [1, 1],
              ],
              { version },
            ),
      );
    const operations = async (run: () => Promise<unknown>) => {
      const mark = server.requests.length;
      await run();
      return server.requests.slice(mark).map((r) => r.operationId);
    };
    assert.deepEqual(await operations(() => store.writeChunks(c, writes(1))), [
      "upsert_points", // 200 window points
      "upsert_points", // 200 fingerprint points
      "get_points",
      "delete_points",
    ]);
    const touches = writes(1).map(
      (w): ChunkWrite => ({
        kind: "touch",
        chunkId: w.chunkId,
        version: 2,
        contentHash: w.records[0]!.contentHash,
        payload: null,
      }),
    );
    assert.deepEqual(await operations(() => store.writeChunks(c, touches)), [
      "batch_update",
      "get_points",
      "delete_points",
    ]);
    assert.equal(await store.count(c), 400);
  });

  it("splits upserts by UTF-8 bytes, so long Korean payloads stay under the request limit", async () => {
    const c = uniqueCollection();
    await store.ensureCollection({ name: c, dimension: 2, distance: "Cosine" });
    // 3 million Hangul syllables: 3 M UTF-16 units, 9 MB of UTF-8 each.
    const leaflet = "가".repeat(3_000_000);
    const records = ["a", "b", "c"].map((id) =>
      makeRecord(c, id, [1, 0], { payload: { contents: leaflet } }),
    );
    const before = server.requests.length;
    await seed(store, c, records);
    const upserts = server.requests.slice(before).filter((r) => r.operationId === "upsert_points");
    assert.ok(upserts.length >= 2, `${upserts.length} request(s)`);
    for (const request of upserts)
      assert.ok(request.bytes <= 16 * 1024 * 1024, `${request.bytes} bytes in one request`);
    assert.equal(await store.count(c), 3);
  });

  it("stores the user's payload as is plus _rag, readable by any Qdrant client", async () => {
    const c = uniqueCollection();
    await store.ensureCollection({ name: c, dimension: 2, distance: "Cosine" });
    const write = pointsWrite(
      c,
      "p",
      [
        [0, 1],
        [1, 0],
      ],
      { documentId: "D", payload: { a: 1 }, version: 3 },
    );
    assert.deepEqual(await store.writeChunks(c, [write]), ["written"]);
    const r = write.records[1];
    assert.ok(r);
    const stored = server.collection(c)?.points.get(`u:${r.id}`);
    assert.deepEqual(stored?.payload, {
      a: 1,
      window_index: 1,
      _rag: {
        chunk_id: "p#1",
        group_id: "p",
        document_id: "D",
        content_hash: r.contentHash,
        payload_hash: r.payloadHash,
        version: 3,
      },
    });
  });

  it("refuses a user payload key _rag and filter keys under _rag", async () => {
    const c = uniqueCollection();
    await store.ensureCollection({ name: c, dimension: 2, distance: "Cosine" });
    await assert.rejects(
      store.writeChunks(c, asChunks([makeRecord(c, "a", [1, 0], { payload: { _rag: 1 } })])),
      hasCode("invalid_request"),
    );
    for (const key of ["_rag", "_rag.document_id", "lang') OR 1", "a..b"]) {
      await assert.rejects(
        store.search(c, Float32Array.from([1, 0]), 5, { [key]: "x" }),
        hasCode("invalid_request"),
      );
    }
  });

  it("splits large upserts under the per-request point cap", async () => {
    const c = uniqueCollection();
    await store.ensureCollection({ name: c, dimension: 2, distance: "Euclid" });
    const mark = server.requests.length;
    await seed(
      store,
      c,
      Array.from({ length: 600 }, (_, i) => makeRecord(c, `k${i}`, [i, 1])),
    );
    const upserts = server.requests.slice(mark).filter((r) => r.operationId === "upsert_points");
    assert.deepEqual(
      upserts.map((r) => (r.body as { points: unknown[] }).points.length),
      [256, 256, 88],
    );
    assert.equal(await store.count(c), 600);
    const hits = await store.search(c, Float32Array.from([0, 1]), 2);
    assert.deepEqual(
      hits.map((h) => [h.chunkId, h.score]),
      [
        ["k0", 0],
        ["k1", 1],
      ],
    );
  });

  it("maps filters to match/any, range for non-integers, and nested should across kinds", () => {
    assert.deepEqual(toQdrantFilter({ lang: "ko", n: [1, 2], x: 1.5, mix: ["a", 3, true] }).filter, {
      must: [
        { key: "lang", match: { value: "ko" } },
        { key: "n", match: { any: [1, 2] } },
        { key: "x", range: { gte: 1.5, lte: 1.5 } },
        {
          should: [
            { key: "mix", match: { value: "a" } },
            { key: "mix", match: { value: 3 } },
            { key: "mix", match: { value: true } },
          ],
        },
      ],
    });
    assert.equal(toQdrantFilter({ lang: [] }).matchesNothing, true);
    assert.equal(toQdrantFilter(undefined).filter, undefined);
  });
});

describe("classifyQdrantError (unit)", () => {
  const ctx = { operation: "upsert", collection: "docs", timeoutMs: 1000 };
  const apiError = (status: number, data: unknown, headers: Record<string, string> = {}) =>
    Object.assign(new Error("x"), { status, statusText: "", data, headers: new Headers(headers) });

  it("classifies statuses, network failures and timeouts", () => {
    const e429 = classifyQdrantError(apiError(429, {}, { "retry-after": "12" }), ctx);
    assert.ok(e429 instanceof ProcessingError && e429.retryable && e429.retryAfterMs === 12_000);
    const e503 = classifyQdrantError(apiError(503, "upstream"), ctx);
    assert.ok(e503 instanceof ProcessingError && e503.retryable);
    const e404 = classifyQdrantError(
      apiError(404, { status: { error: "Not found: Collection `docs` doesn't exist!" } }),
      ctx,
    );
    assert.ok(e404 instanceof AppError && e404.code === "collection_not_found");
    const e422 = classifyQdrantError(apiError(422, { status: { error: "Unprocessable: bad json" } }), ctx);
    assert.ok(e422 instanceof ProcessingError && !e422.retryable && /bad json/.test(e422.message));
    const timeout = Object.assign(new Error("aborted"), { name: "QdrantClientTimeoutError" });
    const t = classifyQdrantError(timeout, ctx);
    assert.ok(t instanceof ProcessingError && t.retryable && /timed out after 1000 ms/.test(t.message));
    const net = new TypeError("fetch failed", {
      cause: Object.assign(new Error("x"), { code: "ECONNRESET" }),
    });
    const n = classifyQdrantError(net, ctx);
    assert.ok(n instanceof ProcessingError && n.retryable && /ECONNRESET/.test(n.message));
  });

  it("parses Retry-After seconds and dates", () => {
    assert.equal(parseRetryAfter("2"), 2000);
    assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6_000);
    assert.equal(parseRetryAfter("soon"), undefined);
    assert.equal(parseRetryAfter(null), undefined);
  });
});
