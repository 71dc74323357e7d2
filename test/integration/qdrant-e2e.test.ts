import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { HttpServer } from "../../src/main.js";
import type { SqliteDatabase } from "../../src/storage/sqlite-database.js";
import { type JobBody, seedChunks, waitForJobDone } from "../helpers/fixtures.js";
import { startInProcess } from "../helpers/in-process-server.js";
import { type QdrantContractServer, startQdrantContractServer } from "../helpers/qdrant-contract-server.js";
import { postJson } from "../helpers/server-process.js";

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
