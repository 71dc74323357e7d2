import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import pino from "pino";
import { Compile } from "typebox/compile";
import type { AppError } from "../../src/domain/errors.js";
import { bindingFor } from "../../src/domain/model-binding.js";
import { Admission } from "../../src/server/admission.js";
import { type App, type AppDeps, buildApp } from "../../src/server/app.js";
import { guardBackend } from "../../src/server/backend-guard.js";
import { BackendHealth, type BackendName } from "../../src/server/backend-health.js";
import { CollectionBindings } from "../../src/server/collection-bindings.js";
import {
  CollectionInfo,
  DeadLetterPage,
  DeadLettersDiscarded,
  DeadLettersReplayed,
  DocumentDeleted,
  DocumentList,
  DocumentReplaceAccepted,
  EmbeddingsResponse,
  ErrorBody,
  Health,
  IngestAccepted,
  Job,
  JobCancelled,
  JobList,
  ModelDescription,
  ModelList,
  Ready,
  SearchResult,
  SeedEmbedAccepted,
  SeedStatus,
  ServerStatus,
  StatusHistory,
} from "../../src/wire/responses.js";
import { FAKE_MODEL, fakeEmbedder, memoryQueue, memoryStore } from "../helpers/in-memory-backends.js";

/**
 * buildApp with in-memory fakes, through app.inject: no socket, no SQLite, no model. Each answer is
 * also checked against its wire schema (src/wire/responses.ts), so a schema that drifts from what a
 * route returns fails here.
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

interface Harness {
  app: App;
  queue: ReturnType<typeof memoryQueue>;
  store: ReturnType<typeof memoryStore>;
  modelLoaded: { value: boolean };
  /** The clock BackendHealth reads (ms); tests move it instead of waiting. */
  clock: { now: number };
}

const apps: App[] = [];
after(async () => {
  await Promise.all(apps.map((app) => app.close()));
});

/** The app as main.ts wires it, over fakes: guarded backends (503 + health record), real Admission. */
function harness(options: { apiKeys?: string[]; readyFailureMs?: number } = {}): Harness {
  const queue = memoryQueue();
  const store = memoryStore();
  const embedder = fakeEmbedder();
  const clock = { now: Date.now() };
  const health = new BackendHealth(() => clock.now);
  const record = (name: BackendName) => (failure: AppError | null) =>
    failure ? health.failed(name, failure) : health.answered(name);
  const guardedQueue = guardBackend(queue, {
    label: "the queue",
    unavailable: "queue_unavailable",
    onOutcome: record("queue"),
  });
  const guardedStore = guardBackend(store, {
    label: "the vector store",
    unavailable: "store_unavailable",
    onOutcome: record("store"),
  });
  const modelLoaded = { value: true };
  const model = () => (modelLoaded.value ? FAKE_MODEL : null);
  const throughput = { rates: () => ({ chunksPerSecond: 0, tokensPerSecond: 0 }) };
  const deps: AppDeps = {
    logger: pino({ level: "silent" }),
    queue: guardedQueue,
    store: guardedStore,
    embedder,
    admission: new Admission(
      guardedQueue,
      throughput as never,
      embedder,
      model,
      {
        maxQueueSize: 100,
        maxQueueTokens: 1_000_000,
        maxChunksPerRequest: 50,
        maxWindowsPerChunk: 8,
      },
      new CollectionBindings(guardedStore),
    ),
    throughput: throughput as never,
    model,
    isShuttingDown: () => false,
    onEnqueued: () => {},
    health,
    ...(options.apiKeys ? { auth: { apiKeys: options.apiKeys, perKeyRequestsPerMinute: 0 } } : {}),
    limits: {
      maxQueueSize: 100,
      bodyLimitBytes: 1_000_000,
      bodyTimeoutMs: 10_000,
      readyFailureMs: options.readyFailureMs ?? 30_000,
      seedCollection: "seed",
      distance: "Cosine",
      defaultOverflow: { policy: "split", overlapTokens: 0 },
    },
  };
  const app = buildApp(deps);
  apps.push(app);
  return { app, queue, store, modelLoaded, clock };
}

const chunk = (id: string, text = `text of ${id}`) => ({
  id,
  text,
  document_id: "doc-1",
  metadata: { lang: "en" },
});

describe("buildApp over in-memory fakes (app.inject)", () => {
  it("accepts an ingest (202), queues its chunks once, and reports the job", async () => {
    const { app, queue } = harness();
    const response = await app.inject({
      method: "POST",
      url: "/v1/collections/docs/chunks",
      payload: { chunks: [chunk("a"), chunk("b")] },
    });
    assert.equal(response.statusCode, 202, response.body);
    const accepted = response.json();
    assertShape(IngestAccepted, accepted);
    assert.deepEqual(Object.keys(accepted).sort(), ["count", "job_id", "status"]);
    assert.equal(accepted.count, 2);
    assert.equal(queue.jobs.size, 1);
    const queued = queue.jobs.get(accepted.job_id);
    assert.deepEqual(
      queued?.chunks.map((c) => [c.chunkId, c.text, c.documentId, c.payload.metadata]),
      [
        ["a", "text of a", "doc-1", { lang: "en" }],
        ["b", "text of b", "doc-1", { lang: "en" }],
      ],
    );

    const job = await app.inject({ method: "GET", url: `/v1/jobs/${accepted.job_id}` });
    assert.equal(job.statusCode, 200);
    assertShape(Job, job.json());
    assert.equal(job.json().counts.total, 2);
    assert.deepEqual(
      job.json().chunks.map((c: { chunk_id: string; state: string }) => [c.chunk_id, c.state]),
      [
        ["a", "queued"],
        ["b", "queued"],
      ],
    );
  });

  it("takes the seed API's bare array and answers /test/status by the threshold", async () => {
    const { app, queue } = harness();
    const seed = (n: number) => ({
      chunk_id: n,
      item_sequence: 7,
      name: "Leaflet",
      contents: `part ${n}`,
      meta: null,
    });
    const embed = await app.inject({ method: "POST", url: "/test/embed", payload: [seed(1), seed(2)] });
    assert.equal(embed.statusCode, 202, embed.body);
    assert.deepEqual(Object.keys(embed.json()).sort(), ["count", "job_id", "status"]);
    assert.equal([...queue.jobs.values()][0]?.chunks[0]?.text, "Leaflet | part 1");
    const status = await app.inject({ method: "GET", url: "/test/status?threshold=0.01" });
    assertShape(SeedStatus, status.json());
    assert.deepEqual(status.json(), {
      current_task_queue_size: 2,
      max_queue_size: 100,
      queue_available: false,
      threshold_ratio: 0.01,
    });
  });

  it("refuses invalid requests with 400 and a stable code, queueing nothing", async () => {
    const { app, queue } = harness();
    const cases: Array<[string, object, string]> = [
      ["no chunks", { chunks: [] }, "empty_batch"],
      ["blank text", { chunks: [chunk("a", " \t ")] }, "empty_text"],
      ["duplicate ids", { chunks: [chunk("a"), chunk("a")] }, "duplicate_chunk_id"],
      ["id of the wrong type", { chunks: [{ id: true, text: "x" }] }, "invalid_request"],
    ];
    for (const [name, payload, code] of cases) {
      const response = await app.inject({ method: "POST", url: "/v1/collections/docs/chunks", payload });
      assert.equal(response.statusCode, 400, `${name}: ${response.body}`);
      assertShape(ErrorBody, response.json());
      assert.equal(response.json().error.code, code, name);
    }
    const broken = await app.inject({
      method: "POST",
      url: "/v1/collections/docs/chunks",
      headers: { "content-type": "application/json" },
      payload: '{"chunks": [',
    });
    assert.equal(broken.statusCode, 400);
    assert.equal(broken.json().error.code, "invalid_json");
    assert.equal(queue.jobs.size, 0);
  });

  it("answers unknown paths 404, wrong methods 405 with Allow, and a malformed URL 400, all in the envelope", async () => {
    const { app } = harness();
    const missing = await app.inject({ method: "GET", url: "/v2/nothing" });
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().error.code, "not_found");
    const wrongMethod = await app.inject({ method: "PATCH", url: "/v1/jobs/some-job" });
    assert.equal(wrongMethod.statusCode, 405);
    assert.equal(wrongMethod.json().error.code, "method_not_allowed");
    assert.equal(wrongMethod.headers.allow, "DELETE, GET, HEAD");
    const noJob = await app.inject({ method: "GET", url: "/v1/jobs/never-made" });
    assert.equal(noJob.statusCode, 404);
    assert.equal(noJob.json().error.code, "job_not_found");
    const malformed = await app.inject({ method: "GET", url: "/v1/jobs/%E0%A4%A" });
    assert.equal(malformed.statusCode, 400, malformed.body);
    assertShape(ErrorBody, malformed.json());
    assert.equal(malformed.json().error.code, "invalid_request");
  });

  it("asks for a key when API_KEYS is set, except on /health", async () => {
    const { app, queue } = harness({ apiKeys: ["secret"] });
    const anonymous = await app.inject({
      method: "POST",
      url: "/v1/collections/docs/chunks",
      payload: { chunks: [chunk("a")] },
    });
    assert.equal(anonymous.statusCode, 401);
    assert.equal(anonymous.json().error.code, "unauthorized");
    assert.equal(anonymous.headers["www-authenticate"], "Bearer");
    const wrong = await app.inject({
      method: "GET",
      url: "/v1/status",
      headers: { authorization: "Bearer not-it" },
    });
    assert.equal(wrong.statusCode, 401);
    assert.equal(queue.jobs.size, 0);
    assert.equal((await app.inject({ method: "GET", url: "/health" })).statusCode, 200);
    const keyed = await app.inject({
      method: "GET",
      url: "/v1/status",
      headers: { authorization: "Bearer secret" },
    });
    assert.equal(keyed.statusCode, 200);
  });

  it("answers 503 queue_unavailable with Retry-After while the queue is down, and /ready says so", async () => {
    const { app, queue } = harness({ readyFailureMs: 0 });
    queue.down = true;
    const ingest = await app.inject({
      method: "POST",
      url: "/v1/collections/docs/chunks",
      payload: { chunks: [chunk("a")] },
    });
    assert.equal(ingest.statusCode, 503, ingest.body);
    assert.equal(ingest.json().error.code, "queue_unavailable");
    assert.ok(Number(ingest.headers["retry-after"]) >= 1);
    const status = await app.inject({ method: "GET", url: "/v1/status" });
    assert.equal(status.statusCode, 503);
    const ready = await app.inject({ method: "GET", url: "/ready" });
    assert.equal(ready.statusCode, 503);
    assert.equal(ready.json().error.code, "queue_unavailable");
    assert.equal(ready.json().error.details.queue.ok, false);
    queue.down = false;
    assert.equal((await app.inject({ method: "GET", url: "/ready" })).statusCode, 200);
  });

  it("/ready reports a failing store at once but stays 200 until it has failed for READY_FAILURE_SECONDS", async () => {
    const { app, store, clock } = harness({ readyFailureMs: 30_000 });
    store.down = true;
    const blip = await app.inject({ method: "GET", url: "/ready" });
    assert.equal(blip.statusCode, 200, blip.body);
    assert.equal(blip.json().store.ok, false, "reported, not yet failing long enough");
    assert.equal(blip.json().store.error.code, "store_unavailable");
    clock.now += 29_000;
    assert.equal((await app.inject({ method: "GET", url: "/ready" })).statusCode, 200);
    clock.now += 1_000;
    const failing = await app.inject({ method: "GET", url: "/ready" });
    assert.equal(failing.statusCode, 503, failing.body);
    assert.equal(failing.json().error.code, "store_unavailable");
    assert.ok(Number(failing.headers["retry-after"]) >= 1);
    store.down = false;
    const back = await app.inject({ method: "GET", url: "/ready" });
    assert.equal(back.statusCode, 200);
    assert.equal(back.json().store.ok, true, "one answer ends the run of failures");
  });

  it("answers 503 store_unavailable when the store is down, and 503 model_not_ready while the model loads", async () => {
    const { app, store, modelLoaded } = harness();
    store.down = true;
    const search = await app.inject({
      method: "POST",
      url: "/v1/collections/docs/search",
      payload: { query: "anything" },
    });
    assert.equal(search.statusCode, 503, search.body);
    assert.equal(search.json().error.code, "store_unavailable");
    assert.ok(search.headers["retry-after"]);
    modelLoaded.value = false;
    const info = await app.inject({ method: "GET", url: "/model-info" });
    assert.equal(info.statusCode, 503);
    assert.equal(info.json().error.code, "model_not_ready");
    assert.equal(info.headers["retry-after"], "2");
  });

  it("serialises every field a route returns: status backends/embedder/storage, search pending and parent_text", async () => {
    const { app, store } = harness();
    await app.inject({
      method: "POST",
      url: "/v1/collections/docs/chunks",
      payload: { chunks: [chunk("a")] },
    });
    const status = await app.inject({ method: "GET", url: "/v1/status" });
    assert.equal(status.statusCode, 200);
    const body = status.json();
    assertShape(ServerStatus, body);
    assert.equal(body.queue.available, true);
    assert.equal(body.queue.storage.ok, true);
    assert.deepEqual(body.backends, { queue: { ok: true }, store: { ok: true } });
    assert.deepEqual(body.embedder, { engine: "local" });
    assert.equal(body.durability.queue, "sqlite");
    assert.deepEqual(body.model, { id: "fake/model", name: "fake/model", dimension: 4, ready: true });

    const pending = await app.inject({
      method: "POST",
      url: "/v1/collections/docs/search",
      payload: { query: "text" },
    });
    assertShape(SearchResult, pending.json());
    assert.deepEqual(pending.json(), { hits: [], pending: 1 });

    store.hits = [
      {
        id: "p1",
        chunkId: "long#1",
        score: 0.5,
        payload: { parent_chunk_id: "long", window_count: 2, window_text: "second half" },
      },
    ];
    const windows = await app.inject({
      method: "POST",
      url: "/v1/collections/docs/search",
      payload: { query: "text", include_parent_text: true },
    });
    assertShape(SearchResult, windows.json());
    assert.deepEqual(windows.json().hits, [
      {
        id: "long#1",
        point_id: "p1",
        score: 0.5,
        payload: { parent_chunk_id: "long", window_count: 2, window_text: "second half" },
        parent_text: null,
      },
    ]);
  });

  it("answers every JSON route in the shape its wire schema documents", async () => {
    const { app, store } = harness();
    await store.ensureCollection({
      name: "bound",
      dimension: 4,
      distance: "Cosine",
      binding: bindingFor(FAKE_MODEL),
    });
    const ingest = await app.inject({
      method: "POST",
      url: "/v1/collections/docs/chunks",
      payload: { chunks: [chunk("a")] },
    });
    const jobId = ingest.json().job_id as string;
    const seed = { chunk_id: 1, item_sequence: 1, name: "n", contents: "c", meta: null };
    const calls: Array<[string, string, object | undefined, number, object]> = [
      ["GET", "/health", undefined, 200, Health],
      ["GET", "/ready", undefined, 200, Ready],
      ["GET", "/model-info", undefined, 200, ModelDescription],
      ["GET", "/test/status", undefined, 200, SeedStatus],
      ["POST", "/test/embed", [seed], 202, SeedEmbedAccepted],
      ["GET", "/v1/jobs", undefined, 200, JobList],
      ["GET", `/v1/jobs/${jobId}`, undefined, 200, Job],
      ["DELETE", `/v1/jobs/${jobId}`, undefined, 200, JobCancelled],
      ["GET", "/v1/status", undefined, 200, ServerStatus],
      ["GET", "/v1/status/history", undefined, 200, StatusHistory],
      ["GET", "/v1/dead-letters", undefined, 200, DeadLetterPage],
      ["POST", "/v1/dead-letters/replay", { all: true }, 200, DeadLettersReplayed],
      ["DELETE", "/v1/dead-letters", { job_id: jobId }, 200, DeadLettersDiscarded],
      ["GET", "/v1/collections/docs/documents", undefined, 200, DocumentList],
      ["GET", "/v1/collections/bound", undefined, 200, CollectionInfo],
      ["PUT", "/v1/collections/docs/documents/doc-1", { chunks: [chunk("z")] }, 202, DocumentReplaceAccepted],
      ["DELETE", "/v1/collections/docs/documents/doc-1", undefined, 200, DocumentDeleted],
      ["GET", "/v1/models", undefined, 200, ModelList],
      ["POST", "/v1/embeddings", { model: "fake/model", input: ["a", "bb"] }, 200, EmbeddingsResponse],
      [
        "POST",
        "/v1/embeddings",
        { model: "fake/model", input: "a", encoding_format: "base64" },
        200,
        EmbeddingsResponse,
      ],
    ];
    for (const [method, url, payload, status, schema] of calls) {
      const response = await app.inject({
        method: method as "GET",
        url,
        ...(payload === undefined ? {} : { payload }),
      });
      assert.equal(response.statusCode, status, `${method} ${url}: ${response.body}`);
      assertShape(schema, response.json());
    }
  });

  it("refuses ingest into a collection bound to another model with 409 model_mismatch on every ingest route, queueing nothing", async () => {
    const { app, queue, store } = harness();
    const otherModel = { ...FAKE_MODEL, id: "other/model", weightsSha256: "ab".repeat(32) };
    const other = bindingFor(otherModel);
    for (const name of ["docs", "seed"]) {
      await store.ensureCollection({ name, dimension: 4, distance: "Cosine", binding: other });
    }
    const seedChunk = { chunk_id: 1, item_sequence: 1, name: "n", contents: "c", meta: null };
    const requests = [
      { method: "POST" as const, url: "/v1/collections/docs/chunks", payload: { chunks: [chunk("a")] } },
      {
        method: "PUT" as const,
        url: "/v1/collections/docs/documents/doc-1",
        payload: { chunks: [chunk("a")] },
      },
      { method: "POST" as const, url: "/test/embed", payload: [seedChunk] },
    ];
    for (const request of requests) {
      const response = await app.inject(request);
      assert.equal(response.statusCode, 409, `${request.url}: ${response.body}`);
      const { error } = response.json() as {
        error: { code: string; message: string; details: Record<string, unknown> };
      };
      assert.equal(error.code, "model_mismatch");
      // Both profiles named: the collection's and the server's.
      assert.ok(error.message.includes("other/model") && error.message.includes("fake/model"), error.message);
      assert.deepEqual(error.details.bound, {
        model: "other/model",
        weights_sha256: "ab".repeat(32),
        fingerprint: other.fingerprint,
      });
      assert.equal(
        (error.details.current as { fingerprint: string }).fingerprint,
        bindingFor(FAKE_MODEL).fingerprint,
      );
    }
    assert.equal(queue.jobs.size, 0, "nothing enqueued");
    // The binding was read once per collection, then answered from the cache.
    assert.equal(store.describeCalls, 2);

    const info = await app.inject({ method: "GET", url: "/v1/collections/docs" });
    assert.equal(info.statusCode, 200);
    const body = info.json() as { binding: { fingerprint: string; model: string }; model_matches: boolean };
    assert.equal(body.binding.fingerprint, other.fingerprint);
    assert.equal(body.binding.model, "other/model");
    assert.equal(body.model_matches, false);
  });

  it("binds an unbound collection to the model on first ingest (adoption) and answers 404 for an unknown one", async () => {
    const { app, queue, store } = harness();
    await store.ensureCollection({ name: "legacy", dimension: 4, distance: "Cosine" });
    const accepted = await app.inject({
      method: "POST",
      url: "/v1/collections/legacy/chunks",
      payload: { chunks: [chunk("a")] },
    });
    assert.equal(accepted.statusCode, 202, accepted.body);
    assert.equal(queue.jobs.size, 1);
    const info = (await app.inject({ method: "GET", url: "/v1/collections/legacy" })).json() as {
      binding: { fingerprint: string; adopted: boolean };
      model_matches: boolean;
    };
    assert.equal(info.binding.fingerprint, bindingFor(FAKE_MODEL).fingerprint);
    assert.equal(info.binding.adopted, true);
    assert.equal(info.model_matches, true);

    await store.ensureCollection({ name: "wide", dimension: 8, distance: "Cosine" });
    const wide = await app.inject({
      method: "POST",
      url: "/v1/collections/wide/chunks",
      payload: { chunks: [chunk("a")] },
    });
    assert.equal(wide.statusCode, 409);
    assert.equal((wide.json() as { error: { code: string } }).error.code, "dimension_mismatch");
    assert.equal(queue.jobs.size, 1);
    assert.equal(
      store.collections.get("wide")?.binding,
      null,
      "a collection of another dimension is not adopted",
    );

    const missing = await app.inject({ method: "GET", url: "/v1/collections/nowhere" });
    assert.equal(missing.statusCode, 404);
    assert.equal((missing.json() as { error: { code: string } }).error.code, "collection_not_found");
  });

  it("keeps accepting ingest while the store is down: the binding is then checked where chunks are written", async () => {
    const { app, queue, store } = harness();
    store.down = true;
    const accepted = await app.inject({
      method: "POST",
      url: "/v1/collections/docs/chunks",
      payload: { chunks: [chunk("a")] },
    });
    assert.equal(accepted.statusCode, 202, accepted.body);
    assert.equal(queue.jobs.size, 1);
  });

  it("while the model loads, an existing collection's ingest waits (503 model_not_ready); a new one is accepted", async () => {
    const { app, queue, store, modelLoaded } = harness();
    await store.ensureCollection({
      name: "docs",
      dimension: 4,
      distance: "Cosine",
      binding: bindingFor(FAKE_MODEL),
    });
    modelLoaded.value = false;
    const waiting = await app.inject({
      method: "POST",
      url: "/v1/collections/docs/chunks",
      payload: { chunks: [chunk("a")] },
    });
    assert.equal(waiting.statusCode, 503);
    assert.equal((waiting.json() as { error: { code: string } }).error.code, "model_not_ready");
    const fresh = await app.inject({
      method: "POST",
      url: "/v1/collections/fresh/chunks",
      payload: { chunks: [chunk("a")] },
    });
    assert.equal(fresh.statusCode, 202);
    assert.equal(queue.jobs.size, 1);
  });
});

describe("collection versions over a store that keeps none", () => {
  it("answers 501 versions_unsupported on reembed, cutover and rollback, 400 for a version's own name", async () => {
    const { app, queue, store } = harness();
    const other = bindingFor({ ...FAKE_MODEL, id: "other/model", weightsSha256: "ab".repeat(32) });
    await store.ensureCollection({ name: "docs", dimension: 4, distance: "Cosine", binding: other });
    for (const action of ["reembed", "cutover", "rollback"]) {
      const response = await app.inject({ method: "POST", url: `/v1/collections/docs/${action}` });
      assert.equal(response.statusCode, 501, `${action}: ${response.body}`);
      assertShape(ErrorBody, response.json());
      assert.equal((response.json() as { error: { code: string } }).error.code, "versions_unsupported");
      const named = await app.inject({ method: "POST", url: `/v1/collections/docs__v2/${action}` });
      assert.equal(named.statusCode, 400, `${action}: ${named.body}`);
      assert.equal((named.json() as { error: { code: string } }).error.code, "invalid_request");
    }
    assert.equal(queue.jobs.size, 0, "nothing enqueued");
  });
});
