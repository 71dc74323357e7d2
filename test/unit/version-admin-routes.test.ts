import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import pino from "pino";
import { Compile } from "typebox/compile";
import { versionName } from "../../src/domain/collection-versions.js";
import { canonicalJson, pointId, sha256 } from "../../src/domain/ids.js";
import { bindingFor, modelFingerprint } from "../../src/domain/model-binding.js";
import type { ModelInfo } from "../../src/domain/types.js";
import type { Embedder, EmbedResult } from "../../src/embedder/embedder.js";
import { ModelRoster } from "../../src/embedder/model-roster.js";
import { Admission, newChunk } from "../../src/server/admission.js";
import { type App, type AppDeps, buildApp } from "../../src/server/app.js";
import { BackendHealth } from "../../src/server/backend-health.js";
import { CollectionBindings } from "../../src/server/collection-bindings.js";
import { reembedJobId } from "../../src/server/routes/version-routes.js";
import { openSqliteDatabase } from "../../src/storage/sqlite-database.js";
import { SqliteVecStore } from "../../src/vector-store/sqlite-vec/sqlite-vec-store.js";
import type { VectorStore } from "../../src/vector-store/vector-store.js";
import {
  CollectionVersions,
  CutoverDone,
  ErrorBody,
  VersionDeleted,
  VersionSwap,
} from "../../src/wire/responses.js";
import { FAKE_MODEL, memoryQueue, memoryStore } from "../helpers/in-memory-backends.js";

/**
 * The version routes (GET and DELETE .../versions, POST .../cutover with a check) through app.inject,
 * over a real sqlite-vec store in a temporary file, an in-memory queue, and two fake models: the
 * old one (A, what version 1 was written with) served beside the server's own
 * (B, version 2's) as a second model of the roster. Vectors are derived from sha256 of a seed and the text, so two models with
 * the same seed rank alike and two with different seeds do not.
 */

const checkers = new Map<object, ReturnType<typeof Compile>>();
function assertShape(schema: object, body: unknown): void {
  let checker = checkers.get(schema);
  if (!checker) {
    checker = Compile(schema as never);
    checkers.set(schema, checker);
  }
  assert.ok(checker.Check(body), `answer matches its schema: ${JSON.stringify([...checker.Errors(body)])}`);
}

const MODEL_A: ModelInfo = { ...FAKE_MODEL, id: "fake/model-a" };
const MODEL_B: ModelInfo = { ...FAKE_MODEL, id: "fake/model-b" };
const CHUNKS = 30;
const TOPICS = ["rivers", "jazz", "taxes", "soup", "bikes"];
const QUERIES = TOPICS.map((topic) => `notes about ${topic}`);

function vectorOf(seed: string, text: string): Float32Array {
  const digest = createHash("sha256").update(`${seed}\u0000${text}`).digest();
  return Float32Array.from({ length: FAKE_MODEL.dimension }, (_, i) => (digest[i] ?? 0) - 127.5);
}

/** A fake model's embedder: `seed` decides its vectors (equal seeds, equal rankings). */
function seededEmbedder(model: ModelInfo, seed: string, calls: string[][] = []): Embedder {
  return {
    async load() {
      return model;
    },
    info: () => model,
    async embed(texts): Promise<EmbedResult> {
      calls.push(texts);
      return {
        vectors: texts.map((text) => vectorOf(seed, text)),
        tokens: texts.map(() => 1),
        truncatedTokens: texts.map(() => 0),
        windows: texts.map(() => null),
      };
    },
    async countTokens(texts) {
      return texts.map(() => 1);
    },
    async close() {},
  };
}

interface Harness {
  app: App;
  store: SqliteVecStore;
  queue: ReturnType<typeof memoryQueue>;
  /** Texts each model's embedder was asked for. */
  embedded: { a: string[][]; b: string[][] };
}

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

function depsOver(
  store: VectorStore,
  queue: ReturnType<typeof memoryQueue>,
  embedder: Embedder,
  models: ModelRoster,
): AppDeps {
  const model = () => MODEL_B;
  const throughput = { rates: () => ({ chunksPerSecond: 0, tokensPerSecond: 0 }) };
  return {
    logger: pino({ level: "silent" }),
    queue,
    store,
    embedder,
    models,
    admission: new Admission(
      queue,
      throughput as never,
      embedder,
      model,
      { maxQueueSize: 1000, maxQueueTokens: 1_000_000, maxChunksPerRequest: 100, maxWindowsPerChunk: 8 },
      new CollectionBindings(store),
    ),
    throughput: throughput as never,
    model,
    isShuttingDown: () => false,
    onEnqueued: () => {},
    health: new BackendHealth(),
    limits: {
      maxQueueSize: 1000,
      bodyLimitBytes: 1_000_000,
      bodyTimeoutMs: 10_000,
      readyFailureMs: 30_000,
      seedCollection: "seed",
      distance: "Cosine",
      defaultOverflow: { policy: "split", overlapTokens: 0 },
    },
  };
}

/**
 * Collection `docs`: version 1 written by model A, version 2 by model B (seeded `seedB`: "A" makes B
 * rank like A). `serveA: false` leaves model A unserved (the roster holds B only).
 */
async function harness(options: { seedB: string; serveA?: boolean }): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), "rag-embed-version-routes-"));
  const db = openSqliteDatabase(join(dir, "v.sqlite"));
  const store = new SqliteVecStore(db);
  const queue = memoryQueue();
  const embedded = { a: [] as string[][], b: [] as string[][] };
  const embedderA = seededEmbedder(MODEL_A, "A", embedded.a);
  const embedderB = seededEmbedder(MODEL_B, options.seedB, embedded.b);
  // The server's own model is B; A is served beside it unless `serveA` is false.
  const models = ModelRoster.of([
    { embedder: embedderB },
    ...(options.serveA === false ? [] : [{ embedder: embedderA }]),
  ]);
  await models.load();
  const app = buildApp(depsOver(store, queue, embedderB, models));
  cleanups.push(async () => {
    await app.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await writeVersion(store, "docs", MODEL_A, "A");
  await writeVersion(store, versionName("docs", 2), MODEL_B, options.seedB);
  return { app, store, queue, embedded };
}

/** CHUNKS chunks into `name`, bound to `model`, with the vectors of its seed. */
async function writeVersion(store: SqliteVecStore, name: string, model: ModelInfo, seed: string) {
  const binding = bindingFor(model);
  await store.ensureCollection({ name, dimension: model.dimension, distance: "Cosine", binding });
  const writes = Array.from({ length: CHUNKS }, (_, i) => {
    const chunkId = `c${i}`;
    const text = `chunk ${i} about ${TOPICS[i % TOPICS.length]}`;
    const payload = { chunk_id: chunkId, text };
    return {
      kind: "points" as const,
      chunkId,
      version: 1,
      records: [
        {
          id: pointId(name, chunkId),
          chunkId,
          parentChunkId: null,
          windowIndex: null,
          version: 1,
          documentId: null,
          vector: vectorOf(seed, text),
          payload,
          contentHash: sha256(`${seed}:${text}`),
          payloadHash: sha256(canonicalJson(payload)),
          modelFingerprint: binding.fingerprint,
        },
      ],
    };
  });
  await store.writeChunks(name, writes);
}

async function call(app: App, method: "GET" | "POST" | "DELETE", url: string, payload?: object) {
  const response = await app.inject({ method, url, ...(payload === undefined ? {} : { payload }) });
  return { status: response.statusCode, body: response.json() as Record<string, unknown> };
}

function errorOf(body: Record<string, unknown>): {
  code: string;
  message: string;
  details: Record<string, unknown>;
} {
  assertShape(ErrorBody, body);
  return body.error as { code: string; message: string; details: Record<string, unknown> };
}

const check = (minOverlap: number, extra: Record<string, unknown> = {}) => ({
  check: { queries: QUERIES, top_k: 5, min_overlap: minOverlap, ...extra },
});

describe("version routes over sqlite-vec and two fake models (app.inject)", () => {
  it("GET .../versions lists both versions: binding, points, which is active and next, served models", async () => {
    const { app } = await harness({ seedB: "B" });
    const { status, body } = await call(app, "GET", "/v1/collections/docs/versions");
    assert.equal(status, 200, JSON.stringify(body));
    assertShape(CollectionVersions, body);
    const listed = body as unknown as CollectionVersions;
    assert.equal(listed.active_version, "docs");
    assert.deepEqual(
      listed.versions.map((v) => [v.version, v.name, v.active, v.next, v.points, v.model_served]),
      [
        [1, "docs", true, false, CHUNKS, true],
        [2, "docs__v2", false, true, CHUNKS, true],
      ],
    );
    assert.deepEqual(
      listed.versions.map((v) => v.binding?.fingerprint),
      [modelFingerprint(MODEL_A), modelFingerprint(MODEL_B)],
    );
    assert.equal(
      errorOf((await call(app, "GET", "/v1/collections/nothing/versions")).body).code,
      "collection_not_found",
    );
    assert.equal(
      errorOf((await call(app, "GET", "/v1/collections/docs__v2/versions")).body).code,
      "invalid_request",
    );
  });

  it("a cutover check that passes cuts over and reports every query's overlap", async () => {
    // Model B ranks exactly like model A: every answer is the same.
    const { app, store, embedded } = await harness({ seedB: "A" });
    const { status, body } = await call(app, "POST", "/v1/collections/docs/cutover", check(0.9));
    assert.equal(status, 200, JSON.stringify(body));
    assertShape(CutoverDone, body);
    const done = body as unknown as CutoverDone;
    assert.equal(done.active_version, "docs__v2");
    assert.equal(done.previous_version, "docs");
    assert.equal(done.check?.passed, true);
    assert.equal(done.check?.mean_overlap, 1);
    assert.equal(done.check?.top_k, 5);
    assert.deepEqual(
      done.check?.queries.map((q) => [q.query, q.overlap]),
      QUERIES.map((query) => [query, 1]),
    );
    assert.equal(await store.resolveAlias("docs"), "docs__v2");
    // Each version's queries were embedded by its own model: A as the roster's second model, B the server's own.
    assert.deepEqual(embedded.a, [QUERIES]);
    assert.deepEqual(embedded.b, [QUERIES]);
  });

  it("a cutover check that fails answers 409 with the mean and every overlap, and changes nothing", async () => {
    const { app, store } = await harness({ seedB: "B" });
    const { status, body } = await call(app, "POST", "/v1/collections/docs/cutover", check(0.9));
    assert.equal(status, 409);
    const error = errorOf(body);
    assert.equal(error.code, "cutover_check_failed");
    const details = error.details as {
      mean_overlap: number;
      passed: boolean;
      queries: Array<{ query: string; overlap: number }>;
      active_version: string;
      next_version: string;
    };
    assert.equal(details.passed, false);
    assert.ok(details.mean_overlap < 0.9, `mean ${details.mean_overlap}`);
    assert.deepEqual(
      details.queries.map((q) => q.query),
      QUERIES,
    );
    const mean = details.queries.reduce((sum, q) => sum + q.overlap, 0) / QUERIES.length;
    assert.ok(Math.abs(details.mean_overlap - mean) < 1e-12);
    assert.deepEqual([details.active_version, details.next_version], ["docs", "docs__v2"]);
    assert.equal(await store.resolveAlias("docs"), "docs", "the name still reaches version 1");
    // The same check with a threshold the mean reaches cuts over; no check cuts over too.
    const passed = await call(app, "POST", "/v1/collections/docs/cutover", check(details.mean_overlap));
    assert.equal(passed.status, 200, JSON.stringify(passed.body));
    assert.equal((passed.body as unknown as CutoverDone).check?.mean_overlap, details.mean_overlap);
    assert.equal(await store.resolveAlias("docs"), "docs__v2");
  });

  it("answers 409 model_not_served naming the model a version is bound to when this server lacks it", async () => {
    const { app, store, embedded } = await harness({ seedB: "B", serveA: false });
    const { status, body } = await call(app, "POST", "/v1/collections/docs/cutover", check(0));
    assert.equal(status, 409);
    const error = errorOf(body);
    assert.equal(error.code, "model_not_served");
    assert.match(error.message, /fake\/model-a/);
    assert.deepEqual(
      [error.details.version, error.details.model, error.details.fingerprint],
      ["docs", "fake/model-a", modelFingerprint(MODEL_A)],
    );
    assert.equal(await store.resolveAlias("docs"), "docs");
    assert.deepEqual(embedded.b, [], "nothing embedded before both models are known to be served");
    const listed = (await call(app, "GET", "/v1/collections/docs/versions"))
      .body as unknown as CollectionVersions;
    assert.deepEqual(
      listed.versions.map((v) => v.model_served),
      [false, true],
    );
    // Without a check the cutover needs no model.
    const plain = await call(app, "POST", "/v1/collections/docs/cutover");
    assert.equal(plain.status, 200);
    assertShape(VersionSwap, plain.body);
  });

  it("refuses a malformed check with 400 and changes nothing", async () => {
    const { app, store } = await harness({ seedB: "A" });
    const bodies = [
      { check: { queries: [], min_overlap: 0.5 } },
      { check: { queries: Array.from({ length: 101 }, (_, i) => `q${i}`), min_overlap: 0.5 } },
      { check: { queries: ["q"], min_overlap: 1.5 } },
      { check: { queries: ["q"] } },
      { check: { queries: ["  "], min_overlap: 0.5 } },
      { check: { queries: ["q"], min_overlap: 0.5, top_k: 0 } },
      { check: { queries: ["q"], min_overlap: 0.5, topk: 3 } },
    ];
    for (const payload of bodies) {
      const { status, body } = await call(app, "POST", "/v1/collections/docs/cutover", payload);
      assert.equal(status, 400, JSON.stringify(payload));
      assert.match(errorOf(body).code, /^(invalid_request|empty_text)$/);
    }
    assert.equal(await store.resolveAlias("docs"), "docs");
  });

  it("DELETE .../versions/N refuses the active version, a version with chunks queued, and unknown ones", async () => {
    const { app, store, queue } = await harness({ seedB: "B" });
    const active = await call(app, "DELETE", "/v1/collections/docs/versions/1");
    assert.equal(active.status, 409);
    assert.equal(errorOf(active.body).code, "version_active");
    // Chunks queued into version 2 (its re-embed, or live ingest routed to it).
    const queued = await queue.enqueue({
      jobId: reembedJobId("docs__v2"),
      collection: "docs__v2",
      chunks: [{ ...newChunk("c0", "chunk 0", null, {}), overflow: { policy: "split", overlapTokens: 0 } }],
      maxQueueSize: 1000,
    });
    assert.equal(queued.accepted, true);
    const pending = await call(app, "DELETE", "/v1/collections/docs/versions/2");
    assert.equal(pending.status, 409);
    const refusal = errorOf(pending.body);
    assert.equal(refusal.code, "reembed_pending");
    assert.deepEqual([refusal.details.pending, refusal.details.job_id], [1, reembedJobId("docs__v2")]);
    const listed = (await call(app, "GET", "/v1/collections/docs/versions"))
      .body as unknown as CollectionVersions;
    assert.deepEqual(
      listed.versions.map((v) => [v.reembed_job_id, v.pending_chunks]),
      [
        [null, 0],
        [reembedJobId("docs__v2"), 1],
      ],
    );
    queue.jobs.delete(reembedJobId("docs__v2"));

    for (const [url, status, code] of [
      ["/v1/collections/docs/versions/3", 404, "version_not_found"],
      ["/v1/collections/nothing/versions/1", 404, "collection_not_found"],
      ["/v1/collections/docs__v2/versions/1", 400, "invalid_request"],
      ["/v1/collections/docs/versions/0", 400, "invalid_request"],
      ["/v1/collections/docs/versions/v2", 400, "invalid_request"],
    ] as const) {
      const answer = await call(app, "DELETE", url);
      assert.equal(answer.status, status, url);
      assert.equal(errorOf(answer.body).code, code, url);
    }
    assert.deepEqual(
      (await store.listVersions("docs")).map((v) => [v.name, v.points]),
      [
        ["docs", CHUNKS],
        ["docs__v2", CHUNKS],
      ],
    );

    // With nothing queued, the next version (not reached by the name) can go.
    const deleted = await call(app, "DELETE", "/v1/collections/docs/versions/2");
    assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
    assertShape(VersionDeleted, deleted.body);
    assert.equal((deleted.body as unknown as VersionDeleted).deleted_points, CHUNKS);
    const cutover = await call(app, "POST", "/v1/collections/docs/cutover");
    assert.equal(errorOf(cutover.body).code, "no_version");
  });

  it("after a cutover the old version can be deleted: the name still answers, rollback has nowhere to go", async () => {
    const { app, store } = await harness({ seedB: "B" });
    assert.equal((await call(app, "POST", "/v1/collections/docs/cutover")).status, 200);
    // Live ingest queued under the name is written where the name reaches (version 2): it does not
    // hold version 1 back.
    const live = await call(app, "POST", "/v1/collections/docs/chunks", {
      chunks: [{ id: "live-1", text: "a chunk arriving now" }],
    });
    assert.equal(live.status, 202, JSON.stringify(live.body));
    const listed = (await call(app, "GET", "/v1/collections/docs/versions"))
      .body as unknown as CollectionVersions;
    assert.deepEqual(
      listed.versions.map((v) => [v.name, v.pending_chunks]),
      [
        ["docs", 0],
        ["docs__v2", 1],
      ],
    );
    const deleted = await call(app, "DELETE", "/v1/collections/docs/versions/1");
    assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
    assertShape(VersionDeleted, deleted.body);
    const body = deleted.body as unknown as VersionDeleted;
    assert.deepEqual(
      [body.name, body.version, body.deleted_points, body.active_version],
      ["docs", 1, CHUNKS, "docs__v2"],
    );
    assert.equal(body.binding?.fingerprint, modelFingerprint(MODEL_A));
    const search = await call(app, "POST", "/v1/collections/docs/search", { query: QUERIES[0], top_k: 100 });
    assert.equal(search.status, 200);
    assert.equal((search.body.hits as unknown[]).length, CHUNKS, "the name reaches version 2, whole");
    const rollback = await call(app, "POST", "/v1/collections/docs/rollback");
    assert.equal(rollback.status, 409);
    assert.equal(errorOf(rollback.body).code, "no_version");
    assert.equal(await store.resolveAlias("docs"), "docs__v2");
    const remaining = (await call(app, "GET", "/v1/collections/docs/versions"))
      .body as unknown as CollectionVersions;
    assert.deepEqual(
      remaining.versions.map((v) => [v.name, v.active]),
      [["docs__v2", true]],
    );
    assert.equal(
      errorOf((await call(app, "DELETE", "/v1/collections/docs/versions/1")).body).code,
      "version_not_found",
    );
  });

  it("answers 501 versions_unsupported on a store that keeps no versions", async () => {
    const store = memoryStore();
    const embedder = seededEmbedder(MODEL_B, "B");
    const app = buildApp(depsOver(store, memoryQueue(), embedder, ModelRoster.of([{ embedder }])));
    cleanups.push(() => app.close());
    for (const [method, url] of [
      ["GET", "/v1/collections/docs/versions"],
      ["DELETE", "/v1/collections/docs/versions/2"],
    ] as const) {
      const answer = await call(app, method, url);
      assert.equal(answer.status, 501, url);
      assert.equal(errorOf(answer.body).code, "versions_unsupported");
    }
  });
});
