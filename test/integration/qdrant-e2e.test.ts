import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { HttpServer } from "../../src/main.js";
import type { SqliteDatabase } from "../../src/storage/sqlite-database.js";
import { BINDING_METADATA_KEY } from "../../src/vector-store/qdrant/collection-binding.js";
import { QdrantStore } from "../../src/vector-store/qdrant/qdrant-store.js";
import { makeRecord, seededRandom, stamped, testBinding } from "../contract/vector-store.contract.js";
import { type JobBody, seedChunks, waitForJobDone } from "../helpers/fixtures.js";
import { startInProcess } from "../helpers/in-process-server.js";
import { type QdrantContractServer, startQdrantContractServer } from "../helpers/qdrant-contract-server.js";
import { getJson, postJson } from "../helpers/server-process.js";

describe("the whole server on VECTOR_STORE=qdrant (spec-validating Qdrant stand-in)", () => {
  let qdrant: QdrantContractServer;
  let server: HttpServer;
  let db: SqliteDatabase | null = null;

  before(async () => {
    qdrant = await startQdrantContractServer();
    server = await startInProcess(
      {
        VECTOR_STORE: "qdrant",
        QDRANT_URL: qdrant.url,
        OVERFLOW_POLICY: "split",
      },
      {
        onDatabase: (opened) => {
          db = opened;
        },
      },
    );
  });
  after(async () => {
    await server.shutdown(2000);
    await qdrant.close();
  });

  /** Plain REST on the double, as an operator would call Qdrant. */
  async function rest(method: string, path: string, body?: unknown): Promise<unknown> {
    const response = await fetch(`${qdrant.url}${path}`, {
      method,
      headers: { "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json = (await response.json()) as { result?: unknown };
    assert.ok(response.ok, `${method} ${path}: HTTP ${response.status} ${JSON.stringify(json)}`);
    return json.result;
  }

  async function hits(collection: string, query: string): Promise<Array<{ id: string; score: number }>> {
    const { status, body } = await postJson<{ hits: Array<{ id: string; score: number }> }>(
      `${server.url}/v1/collections/${collection}/search`,
      { query, top_k: 10 },
    );
    assert.equal(status, 200, JSON.stringify(body));
    return body.hits;
  }

  it("ingests seed chunks, re-ingests without duplicates, searches, and sends only valid requests", async () => {
    const chunks = seedChunks(40, "q");
    chunks[0] = { ...chunks[0]!, contents: "split me ".repeat(400) };
    const first = await postJson<{ job_id: string }>(`${server.url}/test/embed`, chunks);
    const job: JobBody = await waitForJobDone(server.url, first.body.job_id);
    assert.equal(job.counts.stored, 40);
    const again = await postJson<{ job_id: string }>(`${server.url}/test/embed`, chunks);
    const second = await waitForJobDone(server.url, again.body.job_id);
    assert.equal(second.counts.unchanged, 40, "fingerprints read back from Qdrant");

    const search = await postJson<{ hits: Array<{ id: string; payload: Record<string, unknown> }> }>(
      `${server.url}/v1/collections/test/search`,
      { query: "water", top_k: 1000 },
    );
    assert.equal(search.status, 200);
    const ids = search.body.hits.map((h) => h.id);
    assert.equal(new Set(ids).size, ids.length, "no duplicate points");
    assert.ok(
      ids.includes("q-1") && ids.includes("q-0#0") && ids.includes("q-0#1"),
      "chunks and windows stored",
    );
    const plain = search.body.hits.find((h) => h.id === "q-1")!;
    assert.deepEqual(Object.keys(plain.payload).sort(), [
      "contents",
      "docId",
      "itemSequence",
      "meta",
      "name",
    ]);

    const invalid = qdrant.requests.filter((r) => !r.valid);
    assert.deepEqual(invalid, [], "every request the server sent validates against Qdrant's OpenAPI spec");
    assert.ok(qdrant.requests.some((r) => r.operationId === "upsert_points"));
  });

  it("a collection made before versions: reembed builds legacy__v2, cutover is 409 version_migration_required until version 1 moves to legacy__v1, then cutover and rollback work", async () => {
    // As a server from before versions left it: a collection named `legacy` itself, of another model.
    const other = testBinding("older/model", 384);
    const writer = new QdrantStore({ url: qdrant.url, timeoutMs: 5_000 });
    await rest("PUT", "/collections/legacy", {
      vectors: { size: 384, distance: "Cosine" },
      metadata: { [BINDING_METADATA_KEY]: other },
    });
    await writer.ensureCollection({ name: "legacy", dimension: 384, distance: "Cosine", binding: other });
    const random = seededRandom(17);
    const texts = ["ferry timetables", "sourdough starter", "violin strings", "tide pools"];
    await writer.writeChunks(
      "legacy",
      texts.map((text, i) => {
        const vector = Array.from({ length: 384 }, () => random() - 0.5);
        const record = makeRecord("legacy", `old-${i}`, vector, { payload: { text }, documentId: `d${i}` });
        return stamped(
          { kind: "points", chunkId: record.chunkId, version: 1, records: [record] },
          other.fingerprint,
        );
      }),
    );
    await writer.close();

    const reembed = await postJson<{ job_id: string; from_version: string; to_version: string }>(
      `${server.url}/v1/collections/legacy/reembed`,
      {},
    );
    assert.equal(reembed.status, 202, JSON.stringify(reembed.body));
    assert.deepEqual([reembed.body.from_version, reembed.body.to_version], ["legacy", "legacy__v2"]);
    assert.equal((await waitForJobDone(server.url, reembed.body.job_id)).counts.stored, texts.length);

    const mark = qdrant.requests.length;
    const refused = await postJson<{ error: { code: string; message: string; details: unknown } }>(
      `${server.url}/v1/collections/legacy/cutover`,
      {},
    );
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, "version_migration_required");
    assert.deepEqual(refused.body.error.details, {
      collection: "legacy",
      version: "legacy__v2",
      move_to: "legacy__v1",
    });
    assert.ok(qdrant.collectionNames().includes("legacy"), "the collection is untouched");
    assert.equal(qdrant.aliases.has("legacy"), false);
    assert.equal(
      qdrant.requests.slice(mark).filter((r) => r.operationId === "update_aliases").length,
      1,
      "the one swap Qdrant refused",
    );
    const before = await hits("legacy", "violin strings");
    assert.equal(before.length, texts.length, "the name still reaches version 1");

    // The README's one-time move (a snapshot recovery stands in as a scroll and upsert here).
    await rest("PUT", "/collections/legacy__v1", {
      vectors: { size: 384, distance: "Cosine" },
      metadata: { [BINDING_METADATA_KEY]: other },
    });
    const { points } = (await rest("POST", "/collections/legacy/points/scroll", {
      limit: 100,
      with_payload: true,
      with_vector: true,
    })) as { points: unknown[] };
    await rest("PUT", "/collections/legacy__v1/points?wait=true", { points });
    await rest("DELETE", "/collections/legacy");

    const cutover = await postJson<{ active_version: string }>(
      `${server.url}/v1/collections/legacy/cutover`,
      {},
    );
    assert.equal(cutover.status, 200, JSON.stringify(cutover.body));
    assert.equal(cutover.body.active_version, "legacy__v2");
    assert.equal(qdrant.aliases.get("legacy"), "legacy__v2");
    const [top] = await hits("legacy", "violin strings");
    assert.equal(top?.id, "old-2", "the new model answers by the name");
    const info = await getJson<{ model_matches: boolean; active_version: string }>(
      `${server.url}/v1/collections/legacy`,
    );
    assert.deepEqual([info.body.model_matches, info.body.active_version], [true, "legacy__v2"]);

    const rollback = await postJson<{ active_version: string }>(
      `${server.url}/v1/collections/legacy/rollback`,
      {},
    );
    assert.equal(rollback.status, 200, JSON.stringify(rollback.body));
    assert.equal(rollback.body.active_version, "legacy");
    assert.equal(qdrant.aliases.get("legacy"), "legacy__v1");
    assert.deepEqual(await hits("legacy", "violin strings"), before, "version 1's answers are back");
    assert.deepEqual(
      qdrant.requests.filter((r) => !r.valid),
      [],
    );
  });

  it("keeps no vector table in the SQLite file, which holds the queue only", () => {
    assert.ok(db, "the embedded queue opened the SQLite file");
    const tables = db
      .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .all()
      .map((t) => t.name);
    assert.ok(tables.length > 0, "the queue's tables are there");
    assert.deepEqual(
      tables.filter((name) => name.startsWith("vs_")),
      [],
      `no table of the SQLite vector store among ${tables.join(", ")}`,
    );
  });
});
