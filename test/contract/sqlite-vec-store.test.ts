import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { versionName } from "../../src/domain/collection-versions.js";
import { pointId } from "../../src/domain/ids.js";
import type { ModelBinding } from "../../src/domain/model-binding.js";
import type { VectorRecord } from "../../src/domain/types.js";
import { openSqliteDatabase, type SqliteDatabase } from "../../src/storage/sqlite-database.js";
import { SqliteVecStore } from "../../src/vector-store/sqlite-vec/sqlite-vec-store.js";
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

function openTemp(): { db: SqliteDatabase; file: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), "vs-"));
  const file = join(dir, "v.sqlite");
  return { db: openSqliteDatabase(file), file, dir };
}

vectorStoreContract("SqliteVecStore", async () => {
  const { db, dir } = openTemp();
  const store = new SqliteVecStore(db);
  return {
    store,
    async seedUnversioned(collection, records) {
      await seed(store, collection, records);
      const clear = db.prepare("UPDATE vs_points SET version = NULL WHERE collection = ? AND id = ?");
      for (const r of records) clear.run(collection, r.id);
    },
    async cleanup() {
      await store.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe("SqliteVecStore specifics", () => {
  let db: SqliteDatabase;
  let file: string;
  let dir: string;
  let store: SqliteVecStore;

  beforeEach(() => {
    ({ db, file, dir } = openTemp());
    store = new SqliteVecStore(db);
  });

  afterEach(() => {
    if (db.open) db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps bindings in its catalog table and fingerprints in a column; a file from before both gets them", async () => {
    // A file as the release before bindings wrote it: no binding column, no model_fingerprint column.
    db.exec("DROP TABLE vs_points; DROP TABLE vs_collections;");
    db.exec(`CREATE TABLE vs_collections (name TEXT PRIMARY KEY, dimension INTEGER NOT NULL, distance TEXT NOT NULL, created_at TEXT NOT NULL);
      CREATE TABLE vs_points (collection TEXT NOT NULL, id TEXT NOT NULL, chunk_id TEXT NOT NULL, document_id TEXT,
        payload TEXT NOT NULL, content_hash TEXT NOT NULL, payload_hash TEXT NOT NULL, vector BLOB NOT NULL,
        updated_at TEXT NOT NULL, PRIMARY KEY (collection, id));
      INSERT INTO vs_collections VALUES ('legacy', 2, 'Cosine', '2026-01-01T00:00:00Z');`);
    const reopened = new SqliteVecStore(db);
    assert.equal((await reopened.describeCollection("legacy"))?.binding, null);
    const binding = testBinding("model-a", 2);
    await reopened.ensureCollection({ name: "legacy", dimension: 2, distance: "Cosine", binding });
    const row = db.prepare("SELECT binding FROM vs_collections WHERE name = 'legacy'").get() as {
      binding: string;
    };
    assert.deepEqual(JSON.parse(row.binding), { ...binding, adopted: true });
    await reopened.writeChunks("legacy", [
      stamped(pointsWrite("legacy", "a", [[1, 0]]), binding.fingerprint),
    ]);
    const point = db.prepare("SELECT model_fingerprint FROM vs_points WHERE collection = 'legacy'").get() as {
      model_fingerprint: string;
    };
    assert.equal(point.model_fingerprint, binding.fingerprint);
  });

  it("Euclid scores are L2 distances, ascending", async () => {
    const c = uniqueCollection();
    await store.ensureCollection({ name: c, dimension: 2, distance: "Euclid" });
    await seed(store, c, [
      makeRecord(c, "far", [10, 0]),
      makeRecord(c, "near", [1, 1]),
      makeRecord(c, "mid", [3, 4]),
      // Cosine would rank this first (same direction as the query); L2 ranks it by length.
      makeRecord(c, "aligned", [0, 20]),
    ]);
    const hits = await store.search(c, Float32Array.from([0, 1]), 10);
    assert.deepEqual(
      hits.map((h) => h.chunkId),
      ["near", "mid", "far", "aligned"],
    );
    const expected = [1, Math.hypot(3, 3), Math.hypot(10, 1), 19];
    for (const [i, hit] of hits.entries())
      assert.ok(Math.abs(hit.score - expected[i]!) < 1e-5, `${hit.score}`);
  });

  it("refuses Dot distance clearly and creates nothing", async () => {
    const c = uniqueCollection();
    await assert.rejects(
      store.ensureCollection({ name: c, dimension: 3, distance: "Dot" }),
      (err: unknown) => {
        hasCode("invalid_request")(err);
        assert.match((err as Error).message, /Dot distance is not supported.*use Cosine or Euclid/);
        return true;
      },
    );
    // Nothing was recorded under that name, so Cosine can still claim it.
    await store.ensureCollection({ name: c, dimension: 3, distance: "Cosine" });
  });

  it("refuses filter keys that are not dotted identifiers, before touching SQL", async () => {
    const c = uniqueCollection();
    await store.ensureCollection({ name: c, dimension: 2, distance: "Cosine" });
    await seed(store, c, [makeRecord(c, "a", [1, 0], { payload: { lang: "ko" } })]);
    const bad = [
      "lang') OR 1=1 --",
      "$.lang",
      "lang[0]",
      "a..b",
      ".a",
      "a.",
      "",
      "1abc",
      'la"ng',
      "lang OR 1",
    ];
    for (const key of bad) {
      await assert.rejects(
        store.search(c, Float32Array.from([1, 0]), 5, { [key]: "ko" }),
        hasCode("invalid_request"),
        key,
      );
    }
    assert.equal(await store.count(c), 1);
  });

  it("does not match the JSON text of an array or object against a string", async () => {
    const c = uniqueCollection();
    await store.ensureCollection({ name: c, dimension: 2, distance: "Cosine" });
    await seed(store, c, [makeRecord(c, "a", [1, 0], { payload: { tags: ["x"], meta: { k: "v" } } })]);
    const q = Float32Array.from([1, 0]);
    assert.equal((await store.search(c, q, 5, { tags: '["x"]' })).length, 0);
    assert.equal((await store.search(c, q, 5, { meta: '{"k":"v"}' })).length, 0);
    // Object members are not array elements: "meta" holding {k:"v"} must not match "v".
    assert.equal((await store.search(c, q, 5, { meta: "v" })).length, 0);
    assert.equal((await store.search(c, q, 5, { "meta.k": "v" })).length, 1);
  });

  it("writeChunksSync inside an outer transaction that throws is rolled back with it", async () => {
    const c = uniqueCollection();
    await store.ensureCollection({ name: c, dimension: 2, distance: "Cosine" });
    db.exec("CREATE TABLE acks (seq INTEGER PRIMARY KEY)");
    const ackAndUpsert = db.transaction((fail: boolean) => {
      store.writeChunksSync(c, asChunks([makeRecord(c, "a", [1, 0]), makeRecord(c, "b", [0, 1])]));
      db.prepare("INSERT INTO acks (seq) VALUES (1)").run();
      if (fail) throw new Error("ack failed");
    });

    assert.throws(() => ackAndUpsert(true), /ack failed/);
    assert.equal(await store.count(c), 0);
    assert.equal(db.prepare("SELECT COUNT(*) AS n FROM acks").pluck().get(), 0);

    ackAndUpsert(false);
    assert.equal(await store.count(c), 2);
    assert.equal(db.prepare("SELECT COUNT(*) AS n FROM acks").pluck().get(), 1);
  });

  it("a failing writeChunksSync inside an outer transaction leaves the outer work to the caller", async () => {
    const c = uniqueCollection();
    await store.ensureCollection({ name: c, dimension: 2, distance: "Cosine" });
    db.exec("CREATE TABLE acks (seq INTEGER PRIMARY KEY)");
    db.transaction(() => {
      db.prepare("INSERT INTO acks (seq) VALUES (1)").run();
      assert.throws(
        () => store.writeChunksSync(c, asChunks([makeRecord(c, "a", [1, 0]), makeRecord(c, "b", [1])])),
        hasCode("dimension_mismatch"),
      );
    })();
    assert.equal(await store.count(c), 0);
    assert.equal(db.prepare("SELECT COUNT(*) AS n FROM acks").pluck().get(), 1);
  });

  it("stores vectors as float32 little-endian blobs and survives reopening the file", async () => {
    const c = uniqueCollection();
    await store.ensureCollection({ name: c, dimension: 3, distance: "Cosine" });
    // A view into a larger buffer checks that the byte offset is honoured, not just the whole buffer copied.
    const backing = new Float32Array([9, 9, 0.5, -2, 3.25, 9]);
    await seed(store, c, [makeRecord(c, "a", backing.subarray(2, 5))]);
    const blob = db.prepare("SELECT vector FROM vs_points WHERE id = ?").pluck().get(pointId(c, "a"));
    assert.ok(Buffer.isBuffer(blob));
    assert.equal(blob.length, 12);
    assert.deepEqual([blob.readFloatLE(0), blob.readFloatLE(4), blob.readFloatLE(8)], [0.5, -2, 3.25]);

    db.close();
    db = openSqliteDatabase(file);
    store = new SqliteVecStore(db);
    await store.ensureCollection({ name: c, dimension: 3, distance: "Cosine" });
    assert.equal(await store.count(c), 1);
    const [hit] = await store.search(c, Float32Array.from([0.5, -2, 3.25]), 1);
    assert.ok(hit && Math.abs(hit.score - 1) < 1e-5);
  });

  it("scores a zero vector as orthogonal instead of sorting it first", async () => {
    const c = uniqueCollection();
    await store.ensureCollection({ name: c, dimension: 2, distance: "Cosine" });
    await seed(store, c, [
      makeRecord(c, "zero", [0, 0]),
      makeRecord(c, "a", [1, 0.5]),
      makeRecord(c, "opp", [-1, 0]),
    ]);
    const hits = await store.search(c, Float32Array.from([1, 0]), 3);
    assert.deepEqual(
      hits.map((h) => [h.chunkId, Math.round(h.score * 1000) / 1000]),
      [
        ["a", 0.894],
        ["zero", 0],
        ["opp", -1],
      ],
    );
  });

  it("rejects a topK that is not a positive integer", async () => {
    const c = uniqueCollection();
    await store.ensureCollection({ name: c, dimension: 2, distance: "Cosine" });
    for (const k of [0, -1, 1.5, Number.NaN]) {
      await assert.rejects(
        store.search(c, Float32Array.from([1, 0]), k),
        hasCode("invalid_request"),
        String(k),
      );
    }
  });

  it("opens a file from before versions: adds the version column, its points count as older", async () => {
    db.close();
    rmSync(file);
    const old = openSqliteDatabase(file);
    // The schema as the release before versions left it (group_id already there).
    old.exec(`
      CREATE TABLE vs_collections (name TEXT PRIMARY KEY, dimension INTEGER NOT NULL, distance TEXT NOT NULL, created_at TEXT NOT NULL);
      CREATE TABLE vs_points (collection TEXT NOT NULL, id TEXT NOT NULL, chunk_id TEXT NOT NULL, document_id TEXT,
        payload TEXT NOT NULL, content_hash TEXT NOT NULL, payload_hash TEXT NOT NULL, vector BLOB NOT NULL,
        updated_at TEXT NOT NULL, group_id TEXT, PRIMARY KEY (collection, id));
      INSERT INTO vs_collections VALUES ('c', 2, 'Cosine', '2026-01-01T00:00:00Z');
    `);
    const legacy = makeRecord("c", "a", [1, 0], { payload: { v: "legacy" } });
    old
      .prepare("INSERT INTO vs_points VALUES ('c', ?, 'a', 'doc-1', ?, ?, ?, ?, '2026-01-01T00:00:00Z', 'a')")
      .run(
        legacy.id,
        JSON.stringify(legacy.payload),
        legacy.contentHash,
        legacy.payloadHash,
        Buffer.from(legacy.vector.buffer),
      );
    old.close();

    db = openSqliteDatabase(file);
    store = new SqliteVecStore(db);
    assert.equal((await store.fingerprints("c", [legacy.id])).get(legacy.id)?.version, null);
    const newer = makeRecord("c", "a", [0, 1], { payload: { v: "new" }, contentHash: "h2", version: 1 });
    assert.deepEqual(await store.writeChunks("c", asChunks([newer])), ["written"]);
    const [hit] = await store.search("c", Float32Array.from([0, 1]), 1);
    assert.deepEqual(hit?.payload, { v: "new" });
  });

  it("close() leaves the caller's database open", async () => {
    await store.close();
    assert.equal(db.open, true);
  });
});

describe("SqliteVecStore versions (re-embedding)", () => {
  let db: SqliteDatabase;
  let dir: string;
  let store: SqliteVecStore;

  beforeEach(() => {
    ({ db, dir } = openTemp());
    store = new SqliteVecStore(db);
  });

  afterEach(() => {
    if (db.open) db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a collection's name points at its version 2 and back at itself; ids are the same in both versions", async () => {
    const c = uniqueCollection();
    const v2 = versionName(c, 2);
    await store.ensureCollection({ name: c, dimension: 2, distance: "Cosine" });
    await store.ensureCollection({ name: v2, dimension: 2, distance: "Cosine" });
    await seed(store, c, [makeRecord(c, "a", [1, 0])]);
    await seed(store, v2, [makeRecord(v2, "a", [0, 1])]);
    assert.equal(pointId(c, "a"), pointId(v2, "a"));
    assert.equal(await store.resolveAlias(c), c);

    await store.setAlias(c, v2);
    assert.equal(await store.resolveAlias(c), v2);
    const [hit] = await store.search(c, new Float32Array([0, 1]), 1);
    assert.ok(hit && hit.score > 0.99, "search by the name reaches version 2");
    // A write by the logical name after the cutover replaces the version-2 point, never adds one.
    await store.writeChunks(c, asChunks([makeRecord(c, "a", [0, 1], { version: 2 })]));
    assert.equal(await store.count(v2), 1);

    await store.setAlias(c, c);
    assert.equal(await store.resolveAlias(c), c);
    const [old] = await store.search(c, new Float32Array([1, 0]), 1);
    assert.ok(old && old.score > 0.99, "rollback reaches version 1 again");
    // Another collection's name still cannot be taken over.
    const other = uniqueCollection();
    await store.ensureCollection({ name: other, dimension: 2, distance: "Cosine" });
    await assert.rejects(store.setAlias(other, v2), hasCode("invalid_request"));
  });

  it("listVersions lists a collection's versions by their own names, whatever the alias says", async () => {
    const c = uniqueCollection();
    const [v2, v3] = [versionName(c, 2), versionName(c, 3)];
    const bindingA = testBinding("model-a", 2);
    const bindingB = testBinding("model-b", 2);
    await store.ensureCollection({ name: c, dimension: 2, distance: "Cosine", binding: bindingA });
    await store.ensureCollection({ name: v3, dimension: 2, distance: "Cosine", binding: bindingB });
    await store.ensureCollection({ name: v2, dimension: 2, distance: "Cosine", binding: bindingB });
    // Names that only look like versions of c, and another collection's version.
    for (const name of [`${c}__v01`, `${c}__v2x`, `${c}x__v2`, `${c}__v1`]) {
      await store.ensureCollection({ name, dimension: 2, distance: "Cosine" });
    }
    const withModel = (record: VectorRecord, binding: ModelBinding) => ({
      ...record,
      modelFingerprint: binding.fingerprint,
    });
    await seed(store, c, [
      withModel(makeRecord(c, "a", [1, 0]), bindingA),
      withModel(makeRecord(c, "b", [0, 1]), bindingA),
    ]);
    await seed(store, v2, [withModel(makeRecord(v2, "a", [1, 0]), bindingB)]);
    await store.setAlias(c, v2);
    const versions = await store.listVersions(c);
    assert.deepEqual(
      versions.map((v) => [v.name, v.points, v.binding?.fingerprint]),
      [
        [c, 2, bindingA.fingerprint],
        [v2, 1, bindingB.fingerprint],
        [v3, 0, bindingB.fingerprint],
      ],
    );
    assert.deepEqual(await store.listVersions(uniqueCollection()), []);
  });

  it("deleteCollection deletes a version no name reaches, with its points, and refuses the one the name reaches", async () => {
    const c = uniqueCollection();
    const v2 = versionName(c, 2);
    const other = uniqueCollection();
    for (const name of [c, v2, other])
      await store.ensureCollection({ name, dimension: 2, distance: "Cosine" });
    await seed(store, c, [makeRecord(c, "a", [1, 0]), makeRecord(c, "b", [0, 1])]);
    await seed(store, v2, [makeRecord(v2, "a", [0, 1])]);
    await seed(store, other, [makeRecord(other, "a", [1, 0])]);

    // Before any cutover the name reaches version 1 itself; version 2 is reached by nothing.
    await assert.rejects(store.deleteCollection(c), hasCode("version_active"));
    await store.setAlias(c, v2);
    await assert.rejects(store.deleteCollection(v2), hasCode("version_active"));
    assert.equal(await store.deleteCollection(c), 2);
    assert.deepEqual(
      (await store.listVersions(c)).map((v) => v.name),
      [v2],
    );
    // The name still reaches version 2, whose points and search are untouched; so is any other collection.
    assert.equal(await store.resolveAlias(c), v2);
    assert.equal(await store.count(c), 1);
    const [hit] = await store.search(c, new Float32Array([0, 1]), 1);
    assert.equal(hit?.chunkId, "a");
    assert.equal(await store.count(other), 1);
    // Deleted means gone: again is collection_not_found, and a rollback to it has nothing to point at.
    await assert.rejects(store.deleteCollection(c), hasCode("collection_not_found"));
    await assert.rejects(store.setAlias(c, c), hasCode("collection_not_found"));
    // Once the name reaches version 3, version 2 is reached by nothing: it can go.
    await store.ensureCollection({ name: versionName(c, 3), dimension: 2, distance: "Cosine" });
    await store.setAlias(c, versionName(c, 3));
    assert.equal(await store.deleteCollection(v2), 1);
    assert.equal(await store.count(v2), 0);
    assert.equal(await store.describeCollection(v2), null);
  });

  it("scanChunks pages through every chunk once, with the text it was ingested with", async () => {
    const c = uniqueCollection();
    await store.ensureCollection({ name: c, dimension: 2, distance: "Cosine" });
    const records = Array.from({ length: 7 }, (_, i) =>
      makeRecord(c, `k${i}`, [1, i], { payload: { chunk_id: `k${i}`, text: `text ${i}`, metadata: null } }),
    );
    await seed(store, c, records);
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const page: Awaited<ReturnType<SqliteVecStore["scanChunks"]>> = await store.scanChunks(c, after, 3);
      assert.ok(page.chunks.length <= 3);
      for (const chunk of page.chunks) {
        assert.equal(chunk.text, `text ${chunk.chunkId.slice(1)}`);
        assert.equal(chunk.payload.text, chunk.text);
        seen.push(chunk.chunkId);
      }
      after = page.nextCursor;
      pages += 1;
    } while (after !== null);
    assert.deepEqual(seen.sort(), records.map((r) => r.chunkId).sort());
    assert.ok(pages >= 3);
  });
});
