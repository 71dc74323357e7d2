import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { afterEach, beforeEach, describe, it } from "node:test";
import { versionName } from "../../src/domain/collection-versions.js";
import { AppError, type ErrorCode } from "../../src/domain/errors.js";
import { canonicalJson, pointId, sha256, windowPointId } from "../../src/domain/ids.js";
import { type ModelBinding, profileFingerprint } from "../../src/domain/model-binding.js";
import type { Payload, SearchFilter, VectorRecord } from "../../src/domain/types.js";
import type {
  ChunkScanPage,
  ChunkWrite,
  PointsWrite,
  StoredChunk,
  VectorStore,
} from "../../src/vector-store/vector-store.js";
import { locateWindows, parentLayout } from "../../src/vector-store/window-text.js";

export interface VectorStoreFixture {
  store: VectorStore;
  /** Writes these points as a store from before versions would have: with no version at all. */
  seedUnversioned(collection: string, records: VectorRecord[]): Promise<void>;
  cleanup(): Promise<void>;
}

/** Scores travel through float32 in every store, so compare them with float32 slack. */
const SCORE_TOLERANCE = 1e-5;

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return dot / Math.sqrt(na * nb);
}

/** Deterministic so that a failure on a random-vector test reproduces. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function uniqueCollection(): string {
  return `c_${randomUUID().slice(0, 8)}`;
}

interface RecordOptions {
  documentId?: string | null;
  payload?: Payload;
  contentHash?: string;
  /** Default 1. */
  version?: number;
}

/** The one point of an unsplit chunk. */
export function makeRecord(
  collection: string,
  chunkId: string,
  vector: number[] | Float32Array,
  options: RecordOptions = {},
): VectorRecord {
  const documentId = options.documentId === undefined ? "doc-1" : options.documentId;
  const payload = options.payload ?? { chunkId, docId: documentId };
  return {
    id: pointId(collection, chunkId),
    chunkId,
    parentChunkId: null,
    windowIndex: null,
    version: options.version ?? 1,
    documentId,
    vector: vector instanceof Float32Array ? vector : Float32Array.from(vector),
    payload,
    contentHash: options.contentHash ?? sha256(`content:${chunkId}`),
    payloadHash: sha256(canonicalJson(payload)),
  };
}

/** A chunk's points write: one vector makes an unsplit point, several make windows 0..n-1. */
export function pointsWrite(
  collection: string,
  chunkId: string,
  vectors: number[][],
  options: RecordOptions = {},
): PointsWrite {
  const version = options.version ?? 1;
  const single = makeRecord(collection, chunkId, vectors[0] ?? [], options);
  const records =
    vectors.length === 1
      ? [single]
      : vectors.map((vector, index) => {
          const payload: Payload = { ...(options.payload ?? { chunkId }), window_index: index };
          return {
            ...single,
            id: index === 0 ? single.id : windowPointId(collection, chunkId, index),
            chunkId: `${chunkId}#${index}`,
            parentChunkId: chunkId,
            windowIndex: index,
            vector: Float32Array.from(vector),
            payload,
            payloadHash: sha256(canonicalJson(payload)),
          };
        });
  return { kind: "points", chunkId, version, records };
}

/**
 * A split chunk as the planner writes it: each window's text in its payload (`window_text`), where it
 * starts, and on window 0 what no window covers.
 */
export function splitTextWrite(
  collection: string,
  chunkId: string,
  text: string,
  windowTexts: string[],
  options: RecordOptions = {},
): PointsWrite {
  const write = pointsWrite(
    collection,
    chunkId,
    windowTexts.map((_, index) => [1, index]),
    options,
  );
  const starts = locateWindows(text, windowTexts);
  const layout = parentLayout(
    text,
    windowTexts.map((windowText, index) => ({ start: starts[index] ?? 0, text: windowText })),
  );
  write.records = write.records.map((record, index) => {
    const payload: Payload = { ...record.payload, window_text: windowTexts[index] ?? "" };
    return {
      ...record,
      payload,
      payloadHash: sha256(canonicalJson(payload)),
      window: index === 0 ? { start: starts[0] ?? 0, parent: layout } : { start: starts[index] ?? 0 },
    };
  });
  return write;
}

/** Records as chunk writes: a window joins its parent's write, any other record is a chunk of its own. */
export function asChunks(records: VectorRecord[]): ChunkWrite[] {
  const writes = new Map<string, PointsWrite>();
  for (const record of records) {
    const chunkId = record.parentChunkId ?? record.chunkId;
    const write = writes.get(chunkId) ?? { kind: "points", chunkId, version: record.version, records: [] };
    write.records.push(record);
    writes.set(chunkId, write);
  }
  return [...writes.values()];
}

/** Writes the records' chunks and checks every write applied. */
export async function seed(store: VectorStore, collection: string, records: VectorRecord[]): Promise<void> {
  const writes = asChunks(records);
  assert.deepEqual(
    await store.writeChunks(collection, writes),
    writes.map(() => "written"),
  );
}

/** A binding as a server with model `model` would record it (domain/model-binding.ts). */
export function testBinding(model: string, dimension: number): ModelBinding {
  const identity = {
    model,
    weightsSha256: sha256(`weights of ${model}`),
    dtype: "q8",
    pooling: "mean" as const,
    normalize: true,
    prefixes: { passage: "", query: "" },
    maxTokens: 256,
    dimension,
  };
  return {
    ...identity,
    fingerprint: profileFingerprint(identity),
    source: `/models/${model}`,
    boundAt: "2026-12-02T00:00:00.000Z",
    adopted: false,
  };
}

/** The write with every record stamped with a model fingerprint, as the pipeline stamps them. */
export function stamped(write: PointsWrite, fingerprint: string): PointsWrite {
  return { ...write, records: write.records.map((r) => ({ ...r, modelFingerprint: fingerprint })) };
}

export function hasCode(code: ErrorCode): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof AppError, `expected an AppError, got ${String(err)}`);
    assert.equal(err.code, code, `expected code ${code}, got ${err.code}: ${err.message}`);
    return true;
  };
}

/**
 * The behaviour every VectorStore adapter must share. It talks only to the interface and uses a fresh
 * collection name per test, so it can run against a shared live server.
 */
export function vectorStoreContract(name: string, factory: () => Promise<VectorStoreFixture>): void {
  describe(`VectorStore contract: ${name}`, () => {
    let fixture: VectorStoreFixture;
    let store: VectorStore;

    beforeEach(async () => {
      fixture = await factory();
      store = fixture.store;
    });

    afterEach(async () => {
      await fixture.cleanup();
    });

    async function cosineCollection(dimension: number): Promise<string> {
      const collection = uniqueCollection();
      await store.ensureCollection({ name: collection, dimension, distance: "Cosine" });
      return collection;
    }

    async function ids(collection: string, vector: number[], filter?: SearchFilter): Promise<string[]> {
      const hits = await store.search(collection, Float32Array.from(vector), 100, filter);
      return hits.map((h) => h.chunkId).sort();
    }

    describe("ensureCollection", () => {
      it("is idempotent and keeps existing points", async () => {
        const c = await cosineCollection(3);
        await seed(store, c, [makeRecord(c, "a", [1, 0, 0])]);
        await store.ensureCollection({ name: c, dimension: 3, distance: "Cosine" });
        assert.equal(await store.count(c), 1);
      });

      it("refuses another dimension with dimension_mismatch and leaves the collection intact", async () => {
        const c = await cosineCollection(3);
        await seed(store, c, [makeRecord(c, "a", [1, 0, 0])]);
        await assert.rejects(
          store.ensureCollection({ name: c, dimension: 4, distance: "Cosine" }),
          hasCode("dimension_mismatch"),
        );
        assert.equal(await store.count(c), 1);
        await seed(store, c, [makeRecord(c, "b", [0, 1, 0])]);
        const hits = await store.search(c, Float32Array.from([1, 0, 0]), 10);
        assert.deepEqual(
          hits.map((h) => h.chunkId),
          ["a", "b"],
        );
      });

      it("refuses another distance with dimension_mismatch and leaves the collection intact", async () => {
        const c = await cosineCollection(3);
        await seed(store, c, [makeRecord(c, "a", [1, 1, 0])]);
        await assert.rejects(
          store.ensureCollection({ name: c, dimension: 3, distance: "Euclid" }),
          hasCode("dimension_mismatch"),
        );
        assert.equal(await store.count(c), 1);
        const [hit] = await store.search(c, Float32Array.from([1, 0, 0]), 1);
        assert.ok(hit);
        // Still cosine: a Euclid store would score this pair with distance 1, not similarity 0.707.
        assert.ok(Math.abs(hit.score - cosine([1, 1, 0], [1, 0, 0])) < SCORE_TOLERANCE, `score ${hit.score}`);
      });
    });

    describe("model bindings", () => {
      it("records the binding when the collection is created and describes it", async () => {
        const c = uniqueCollection();
        assert.equal(await store.describeCollection(c), null);
        const binding = testBinding("model-a", 3);
        await store.ensureCollection({ name: c, dimension: 3, distance: "Cosine", binding });
        const description = await store.describeCollection(c);
        assert.deepEqual(description, { name: c, dimension: 3, distance: "Cosine", binding });
      });

      it("refuses another profile with model_mismatch naming both, and keeps the first binding", async () => {
        const c = uniqueCollection();
        const first = testBinding("model-a", 3);
        await store.ensureCollection({ name: c, dimension: 3, distance: "Cosine", binding: first });
        const other = testBinding("model-b", 3);
        await assert.rejects(
          store.ensureCollection({ name: c, dimension: 3, distance: "Cosine", binding: other }),
          (err: unknown) => {
            hasCode("model_mismatch")(err);
            const message = (err as Error).message;
            assert.ok(message.includes(first.fingerprint) && message.includes(other.fingerprint), message);
            return true;
          },
        );
        // The same profile ensures again without error; the binding is the first one.
        await store.ensureCollection({ name: c, dimension: 3, distance: "Cosine", binding: first });
        assert.equal((await store.describeCollection(c))?.binding?.fingerprint, first.fingerprint);
      });

      it("adopts a collection made without a binding: ensureCollection binds it, marked adopted", async () => {
        const c = await cosineCollection(3);
        await seed(store, c, [makeRecord(c, "old", [1, 0, 0])]);
        assert.equal((await store.describeCollection(c))?.binding, null);
        const binding = testBinding("model-a", 3);
        await store.ensureCollection({ name: c, dimension: 3, distance: "Cosine", binding });
        assert.deepEqual((await store.describeCollection(c))?.binding, { ...binding, adopted: true });
        assert.equal(await store.count(c), 1, "the old points stay");
      });

      it("adoptCollection binds once: a second profile gets the first binding back", async () => {
        const c = await cosineCollection(3);
        const first = testBinding("model-a", 3);
        assert.equal((await store.adoptCollection(c, first)).fingerprint, first.fingerprint);
        const second = await store.adoptCollection(c, testBinding("model-b", 3));
        assert.equal(second.fingerprint, first.fingerprint);
        await assert.rejects(
          store.adoptCollection(uniqueCollection(), first),
          hasCode("collection_not_found"),
        );
      });

      it("every point carries the binding's fingerprint, windows too", async () => {
        const c = uniqueCollection();
        const binding = testBinding("model-a", 2);
        await store.ensureCollection({ name: c, dimension: 2, distance: "Cosine", binding });
        const split = pointsWrite(c, "split", [
          [1, 0],
          [0, 1],
        ]);
        const writes = [pointsWrite(c, "whole", [[1, 1]]), split].map((w) => stamped(w, binding.fingerprint));
        assert.deepEqual(await store.writeChunks(c, writes), ["written", "written"]);
        const ids = writes.flatMap((w) => (w.kind === "points" ? w.records.map((r) => r.id) : []));
        const stored = await store.fingerprints(c, ids);
        assert.equal(stored.size, 3);
        for (const id of ids) assert.equal(stored.get(id)?.modelFingerprint, binding.fingerprint, id);
      });

      it("a bound collection refuses points of another profile (or of none) and writes nothing", async () => {
        const c = uniqueCollection();
        const binding = testBinding("model-a", 2);
        await store.ensureCollection({ name: c, dimension: 2, distance: "Cosine", binding });
        const good = stamped(pointsWrite(c, "good", [[1, 0]]), binding.fingerprint);
        const foreign = stamped(pointsWrite(c, "foreign", [[0, 1]]), testBinding("model-b", 2).fingerprint);
        await assert.rejects(store.writeChunks(c, [good, foreign]), hasCode("model_mismatch"));
        await assert.rejects(
          store.writeChunks(c, [pointsWrite(c, "unmarked", [[0, 1]])]),
          hasCode("model_mismatch"),
        );
        assert.equal(await store.count(c), 0);
      });
    });

    describe("setAlias (cutover)", () => {
      it("points a name at one collection, then swaps it to another; calls by the alias reach the target", async () => {
        const blue = await cosineCollection(2);
        const green = await cosineCollection(2);
        const alias = uniqueCollection();
        await seed(store, blue, [makeRecord(blue, "old", [1, 0])]);
        await seed(store, green, [makeRecord(green, "new-1", [1, 0]), makeRecord(green, "new-2", [0, 1])]);

        await store.setAlias(alias, blue);
        assert.deepEqual(await ids(alias, [1, 0]), ["old"]);
        assert.equal(await store.count(alias), 1);
        await store.setAlias(alias, green);
        assert.deepEqual(await ids(alias, [1, 0]), ["new-1", "new-2"]);
        assert.equal(await store.count(alias), 2);
        assert.equal((await store.describeCollection(alias))?.dimension, 2);

        // Writes through the alias land in its target, ids derived from the alias's name.
        await seed(store, alias, [makeRecord(alias, "via-alias", [1, 1])]);
        assert.equal(await store.count(green), 3);
        assert.equal(await store.count(blue), 1);
        // Back again (a rollback): the old collection was kept as it was.
        await store.setAlias(alias, blue);
        assert.deepEqual(await ids(alias, [1, 0]), ["old"]);
      });

      it("refuses a missing target and an alias named like a collection", async () => {
        const blue = await cosineCollection(2);
        const other = await cosineCollection(2);
        await assert.rejects(
          store.setAlias(uniqueCollection(), uniqueCollection()),
          hasCode("collection_not_found"),
        );
        await assert.rejects(store.setAlias(other, blue), hasCode("invalid_request"));
        assert.equal((await store.describeCollection(other))?.name, other);
      });
    });

    describe("versions of a collection (re-embedding)", () => {
      type Versions = Required<
        Pick<VectorStore, "resolveAlias" | "scanChunks" | "listVersions" | "deleteCollection">
      >;
      /** The store's versions API; a store without it skips these tests. */
      function versioned(): Versions | undefined {
        const { resolveAlias, scanChunks, listVersions, deleteCollection } = store;
        if (
          resolveAlias === undefined ||
          scanChunks === undefined ||
          listVersions === undefined ||
          deleteCollection === undefined
        ) {
          return undefined;
        }
        return {
          resolveAlias: resolveAlias.bind(store),
          scanChunks: scanChunks.bind(store),
          listVersions: listVersions.bind(store),
          deleteCollection: deleteCollection.bind(store),
        };
      }

      it("a collection's name reaches its version 2 after the cutover, and itself again after the rollback; a chunk has one id in both", async (t) => {
        const api = versioned();
        if (api === undefined) return t.skip("this store keeps no versions");
        const c = await cosineCollection(2);
        const v2 = versionName(c, 2);
        await store.ensureCollection({ name: v2, dimension: 2, distance: "Cosine" });
        await seed(store, c, [makeRecord(c, "a", [1, 0]), makeRecord(c, "old-only", [1, 0.1])]);
        await seed(store, v2, [makeRecord(v2, "a", [0, 1])]);
        assert.equal(pointId(c, "a"), pointId(v2, "a"));
        assert.equal(await api.resolveAlias(c), c);

        await store.setAlias(c, v2);
        assert.equal(await api.resolveAlias(c), v2);
        const [hit] = await store.search(c, new Float32Array([0, 1]), 1);
        assert.ok(hit?.chunkId === "a" && hit.score > 0.99, "search by the name reaches version 2");
        assert.equal(await store.count(c), 1);
        // A write by the name after the cutover replaces the version-2 point, never adds one.
        await store.writeChunks(c, asChunks([makeRecord(c, "a", [0, 1], { version: 2 })]));
        await seed(store, c, [makeRecord(c, "new", [1, 1])]);
        assert.equal(await store.count(v2), 2);
        assert.deepEqual((await store.fingerprints(c, [pointId(c, "a")])).get(pointId(c, "a"))?.version, 2);

        await store.setAlias(c, c);
        assert.equal(await api.resolveAlias(c), c);
        assert.deepEqual(await ids(c, [1, 0]), ["a", "old-only"], "the rollback reaches version 1 as it was");
        assert.equal(await store.count(v2), 2, "version 2 is kept");
      });

      it("a cutover to a version that does not exist changes nothing", async (t) => {
        const api = versioned();
        if (api === undefined) return t.skip("this store keeps no versions");
        const c = await cosineCollection(2);
        await seed(store, c, [makeRecord(c, "a", [1, 0])]);
        await assert.rejects(store.setAlias(c, versionName(c, 3)), hasCode("collection_not_found"));
        assert.equal(await api.resolveAlias(c), c);
        assert.deepEqual(await ids(c, [1, 0]), ["a"]);
        const v2 = versionName(c, 2);
        await store.ensureCollection({ name: v2, dimension: 2, distance: "Cosine" });
        await store.setAlias(c, v2);
        await assert.rejects(store.setAlias(c, versionName(c, 3)), hasCode("collection_not_found"));
        assert.equal(await api.resolveAlias(c), v2, "still version 2");
      });

      it("listVersions lists the versions by the names clients know, with their own shape, binding and points, whatever the name reaches", async (t) => {
        const api = versioned();
        if (api === undefined) return t.skip("this store keeps no versions");
        const c = uniqueCollection();
        const [v2, v3] = [versionName(c, 2), versionName(c, 3)];
        const a = testBinding("model-a", 2);
        const b = testBinding("model-b", 3);
        await store.ensureCollection({ name: c, dimension: 2, distance: "Cosine", binding: a });
        await store.ensureCollection({ name: v3, dimension: 3, distance: "Cosine", binding: b });
        await store.ensureCollection({ name: v2, dimension: 3, distance: "Cosine", binding: b });
        // Names that only look like versions of c, and another collection's version 2.
        for (const name of [`${c}__v02`, `${c}__v2x`, `${c}x__v2`]) {
          await store.ensureCollection({ name, dimension: 2, distance: "Cosine" });
        }
        await seed(store, c, [
          { ...makeRecord(c, "a", [1, 0]), modelFingerprint: a.fingerprint },
          { ...makeRecord(c, "b", [0, 1]), modelFingerprint: a.fingerprint },
        ]);
        await seed(store, v2, [{ ...makeRecord(v2, "a", [1, 0, 0]), modelFingerprint: b.fingerprint }]);
        await store.setAlias(c, v2);
        assert.deepEqual(
          (await api.listVersions(c)).map((v) => [v.name, v.dimension, v.points, v.binding?.fingerprint]),
          [
            [c, 2, 2, a.fingerprint],
            [v2, 3, 1, b.fingerprint],
            [v3, 3, 0, b.fingerprint],
          ],
        );
        assert.deepEqual(await api.listVersions(uniqueCollection()), []);
      });

      it("deleteCollection deletes a version no name reaches with its points, and refuses the one the name reaches", async (t) => {
        const api = versioned();
        if (api === undefined) return t.skip("this store keeps no versions");
        const c = uniqueCollection();
        const [v2, v3] = [versionName(c, 2), versionName(c, 3)];
        const other = uniqueCollection();
        for (const name of [c, v2, other]) {
          await store.ensureCollection({ name, dimension: 2, distance: "Cosine" });
        }
        await seed(store, c, [makeRecord(c, "a", [1, 0]), makeRecord(c, "b", [0, 1])]);
        await seed(store, v2, [makeRecord(v2, "a", [0, 1])]);
        await seed(store, other, [makeRecord(other, "a", [1, 0])]);

        // Before any cutover the name reaches version 1; version 2 is reached by nothing.
        await assert.rejects(api.deleteCollection(c), hasCode("version_active"));
        await store.setAlias(c, v2);
        await assert.rejects(api.deleteCollection(v2), hasCode("version_active"));
        assert.equal(await api.deleteCollection(c), 2);
        assert.deepEqual(
          (await api.listVersions(c)).map((v) => v.name),
          [v2],
        );
        // The name still reaches version 2, untouched; so is any other collection.
        assert.equal(await api.resolveAlias(c), v2);
        assert.equal(await store.count(c), 1);
        assert.equal((await store.search(c, new Float32Array([0, 1]), 1))[0]?.chunkId, "a");
        assert.equal(await store.count(other), 1);
        // Gone: deleting again is collection_not_found, and a rollback to it has nothing to point at.
        await assert.rejects(api.deleteCollection(c), hasCode("collection_not_found"));
        await assert.rejects(store.setAlias(c, c), hasCode("collection_not_found"));
        assert.equal(await api.resolveAlias(c), v2, "the failed rollback changed nothing");
        // Once the name reaches version 3, version 2 can go.
        await store.ensureCollection({ name: v3, dimension: 2, distance: "Cosine" });
        await store.setAlias(c, v3);
        assert.equal(await api.deleteCollection(v2), 1);
        assert.equal(await store.describeCollection(v2), null);
        assert.equal(await api.resolveAlias(c), v3);
      });

      it("scanChunks pages through every chunk once, with its text, document id and payload as ingested", async (t) => {
        const api = versioned();
        if (api === undefined) return t.skip("this store keeps no versions");
        const c = await cosineCollection(2);
        const plain = Array.from({ length: 5 }, (_, i) =>
          makeRecord(c, `k${i}`, [1, i], {
            documentId: i % 2 === 0 ? "doc-even" : null,
            payload: { chunk_id: `k${i}`, text: `text ${i}`, metadata: { n: i } },
          }),
        );
        const seedChunk = makeRecord(c, "seed", [0, 1], { payload: { contents: "a seed chunk", name: "s" } });
        const whole = "제1조(목적) 이 약관은 회사가 제공하는 서비스의 이용 조건을 정한다.";
        const split = splitTextWrite(
          c,
          "long",
          whole,
          ["제1조(목적) 이 약관은 회사가", "회사가 제공하는 서비스의 이용 조건을 정한다."],
          { documentId: "doc-long", payload: { tag: "kept", parent_chunk_id: "long", window_count: 2 } },
        );
        await seed(store, c, [...plain, seedChunk]);
        assert.deepEqual(await store.writeChunks(c, [split]), ["written"]);

        const seen = new Map<string, StoredChunk>();
        let after: string | null = null;
        let pages = 0;
        do {
          const page: ChunkScanPage = await api.scanChunks(c, after, 2);
          assert.ok(page.chunks.length <= 2, "at most `limit` chunks a page");
          for (const chunk of page.chunks) {
            assert.equal(seen.has(chunk.chunkId), false, `${chunk.chunkId} listed twice`);
            seen.set(chunk.chunkId, chunk);
          }
          after = page.nextCursor;
          pages += 1;
          assert.ok(pages < 50, "the cursor moves on");
        } while (after !== null);
        assert.deepEqual([...seen.keys()].sort(), ["k0", "k1", "k2", "k3", "k4", "long", "seed"]);
        for (const [i, record] of plain.entries()) {
          const chunk = seen.get(record.chunkId);
          assert.equal(chunk?.text, `text ${i}`);
          assert.deepEqual(chunk?.payload, record.payload);
          assert.equal(chunk?.documentId, record.documentId);
          assert.equal(chunk?.version, 1);
        }
        assert.equal(seen.get("seed")?.text, "a seed chunk");
        // A split chunk comes back whole: its text put back together, no window fields.
        assert.deepEqual(seen.get("long"), {
          chunkId: "long",
          documentId: "doc-long",
          payload: { tag: "kept", text: whole },
          text: whole,
          version: 1,
        });
        assert.ok(pages >= 4);
      });
    });

    describe("writeChunks and count", () => {
      it("counts written points, and 0 for an unknown collection", async () => {
        const c = await cosineCollection(3);
        assert.equal(await store.count(c), 0);
        await seed(store, c, [
          makeRecord(c, "a", [1, 0, 0]),
          makeRecord(c, "b", [0, 1, 0]),
          makeRecord(c, "c", [0, 0, 1]),
        ]);
        assert.equal(await store.count(c), 3);
        assert.equal(await store.count(uniqueCollection()), 0);
      });

      it("a newer version keeps one point per chunk and replaces its vector and payload", async () => {
        const c = await cosineCollection(3);
        await seed(store, c, [
          makeRecord(c, "a", [1, 0, 0], { payload: { v: 1 } }),
          makeRecord(c, "b", [0, 1, 0], { payload: { v: 1 } }),
        ]);
        await seed(store, c, [
          makeRecord(c, "a", [0, 0, 1], { payload: { v: 2 }, version: 2 }),
          makeRecord(c, "b", [0, 1, 0], { payload: { v: 1 }, version: 2 }),
        ]);
        assert.equal(await store.count(c), 2);
        const [top] = await store.search(c, Float32Array.from([0, 0, 1]), 1);
        assert.ok(top);
        assert.equal(top.chunkId, "a");
        assert.equal(top.id, pointId(c, "a"));
        assert.ok(Math.abs(top.score - 1) < SCORE_TOLERANCE, `score ${top.score}`);
        assert.deepEqual(top.payload, { v: 2 });
      });

      it("returns payloads exactly as stored (nested, null, unicode)", async () => {
        const c = await cosineCollection(2);
        const payload: Payload = {
          name: "타이레놀정500밀리그람",
          meta: { lang: "ko", pages: [1, 2], extra: null, ok: true, ratio: 0.25 },
          emptyObject: {},
        };
        await seed(store, c, [makeRecord(c, "a", [1, 0], { payload })]);
        const [hit] = await store.search(c, Float32Array.from([1, 0]), 1);
        assert.deepEqual(hit?.payload, payload);
      });

      it("a batch with one wrong-dimension vector fails with dimension_mismatch and writes nothing", async () => {
        const c = await cosineCollection(3);
        await assert.rejects(
          store.writeChunks(c, asChunks([makeRecord(c, "a", [1, 0, 0]), makeRecord(c, "b", [1, 0, 0, 0])])),
          hasCode("dimension_mismatch"),
        );
        assert.equal(await store.count(c), 0);
        const fp = await store.fingerprints(c, [pointId(c, "a"), pointId(c, "b")]);
        assert.equal(fp.size, 0);
      });

      it("a write into an unknown collection fails with collection_not_found", async () => {
        const c = uniqueCollection();
        await assert.rejects(
          store.writeChunks(c, asChunks([makeRecord(c, "a", [1, 0, 0])])),
          hasCode("collection_not_found"),
        );
      });
    });

    describe("search", () => {
      const points: Record<string, number[]> = {
        p1: [1, 0, 0, 0],
        p2: [0.9, 0.1, 0, 0],
        p3: [0.5, 0.5, 0.2, 0],
        p4: [0, 1, 0, 0],
        p5: [-1, 0.2, 0, 0.3],
        p6: [0.1, 0.1, 0.9, 0.4],
      };

      it("returns the exact nearest neighbours in order with cosine similarity scores", async () => {
        const c = await cosineCollection(4);
        await seed(
          store,
          c,
          Object.entries(points).map(([id, v]) => makeRecord(c, id, v)),
        );
        const query = [0.8, 0.3, 0.1, 0];
        const expected = Object.entries(points)
          .map(([id, v]) => ({ id, score: cosine(query, v) }))
          .sort((a, b) => b.score - a.score)
          .slice(0, 4);
        const hits = await store.search(c, Float32Array.from(query), 4);
        assert.deepEqual(
          hits.map((h) => h.chunkId),
          expected.map((e) => e.id),
        );
        for (const [i, hit] of hits.entries()) {
          const want = expected[i]!;
          assert.ok(
            Math.abs(hit.score - want.score) < SCORE_TOLERANCE,
            `${hit.chunkId}: ${hit.score} vs ${want.score}`,
          );
          assert.equal(hit.id, pointId(c, want.id));
        }
      });

      it("topK larger than the count returns every point", async () => {
        const c = await cosineCollection(4);
        await seed(
          store,
          c,
          Object.entries(points).map(([id, v]) => makeRecord(c, id, v)),
        );
        const hits = await store.search(c, Float32Array.from([0, 0, 1, 0]), 50);
        assert.equal(hits.length, 6);
        assert.equal(hits[0]?.chunkId, "p6");
      });

      it("an empty collection returns no hits", async () => {
        const c = await cosineCollection(4);
        assert.deepEqual(await store.search(c, Float32Array.from([1, 0, 0, 0]), 10), []);
      });

      it("an unknown collection fails with collection_not_found", async () => {
        await assert.rejects(
          store.search(uniqueCollection(), Float32Array.from([1, 0, 0]), 5),
          hasCode("collection_not_found"),
        );
      });

      it("a query vector of the wrong length fails with dimension_mismatch", async () => {
        const c = await cosineCollection(4);
        await seed(store, c, [makeRecord(c, "a", [1, 0, 0, 0])]);
        await assert.rejects(store.search(c, Float32Array.from([1, 0, 0]), 5), hasCode("dimension_mismatch"));
      });

      it("a 10,000-topK search over 2,000 random 384-d points returns them all, sorted by score", async () => {
        const dim = 384;
        const n = 2000;
        const c = await cosineCollection(dim);
        const random = seededRandom(42);
        const vectors = new Map<string, Float32Array>();
        const records: VectorRecord[] = [];
        for (let i = 0; i < n; i++) {
          const v = new Float32Array(dim);
          for (let d = 0; d < dim; d++) v[d] = random() * 2 - 1;
          vectors.set(`r${i}`, v);
          records.push(makeRecord(c, `r${i}`, v, { documentId: `doc-${i % 50}`, payload: { i } }));
        }
        for (let i = 0; i < n; i += 500) await seed(store, c, records.slice(i, i + 500));
        assert.equal(await store.count(c), n);

        const query = vectors.get("r7")!;
        const hits = await store.search(c, query, 10_000);
        assert.equal(hits.length, n);
        assert.equal(new Set(hits.map((h) => h.id)).size, n);
        assert.equal(hits[0]?.chunkId, "r7");
        for (let i = 1; i < hits.length; i++) {
          assert.ok(hits[i - 1]!.score >= hits[i]!.score, `not sorted at ${i}`);
        }
        for (const hit of hits) {
          const want = cosine(query, vectors.get(hit.chunkId)!);
          assert.ok(Math.abs(hit.score - want) < 1e-4, `${hit.chunkId}: ${hit.score} vs ${want}`);
        }
      });
    });

    describe("filters", () => {
      async function filtered(): Promise<string> {
        const c = await cosineCollection(2);
        await seed(store, c, [
          makeRecord(c, "a", [1, 0], {
            payload: { lang: "ko", n: 1, s: "1", ok: true, meta: { src: "x", year: 2020 } },
          }),
          makeRecord(c, "b", [1, 0.1], {
            payload: { lang: "en", n: 2, s: "2", ok: false, meta: { src: "y", year: 2021 } },
          }),
          makeRecord(c, "c", [1, 0.2], {
            payload: {
              lang: "ko",
              n: 3,
              s: "3",
              ok: false,
              meta: { src: "y", year: 2022 },
              tags: ["t1", "t2"],
            },
          }),
          makeRecord(c, "d", [1, 0.3], { payload: { lang: "ja", n: 1.5, meta: null } }),
        ]);
        return c;
      }
      const q = [1, 0];

      it("matches a scalar string", async () => {
        const c = await filtered();
        assert.deepEqual(await ids(c, q, { lang: "ko" }), ["a", "c"]);
      });

      it("matches a nested path", async () => {
        const c = await filtered();
        assert.deepEqual(await ids(c, q, { "meta.src": "y" }), ["b", "c"]);
        assert.deepEqual(await ids(c, q, { "meta.year": 2020 }), ["a"]);
      });

      it("matches any of an array of values, across types", async () => {
        const c = await filtered();
        assert.deepEqual(await ids(c, q, { lang: ["en", "ja"] }), ["b", "d"]);
        assert.deepEqual(await ids(c, q, { n: [2, 1.5] }), ["b", "d"]);
      });

      it("an empty any-of array matches nothing", async () => {
        const c = await filtered();
        assert.deepEqual(await ids(c, q, { lang: [] }), []);
      });

      it("matches booleans as booleans, not as 1/0", async () => {
        const c = await filtered();
        assert.deepEqual(await ids(c, q, { ok: true }), ["a"]);
        assert.deepEqual(await ids(c, q, { ok: false }), ["b", "c"]);
        assert.deepEqual(await ids(c, q, { ok: 1 }), []);
        assert.deepEqual(await ids(c, q, { n: true }), []);
      });

      it("keeps numbers and strings distinct", async () => {
        const c = await filtered();
        assert.deepEqual(await ids(c, q, { n: 1 }), ["a"]);
        assert.deepEqual(await ids(c, q, { n: "1" }), []);
        assert.deepEqual(await ids(c, q, { s: "1" }), ["a"]);
        assert.deepEqual(await ids(c, q, { s: 1 }), []);
        assert.deepEqual(await ids(c, q, { n: 1.5 }), ["d"]);
      });

      it("ANDs keys together", async () => {
        const c = await filtered();
        assert.deepEqual(await ids(c, q, { lang: "ko", "meta.src": "y" }), ["c"]);
        assert.deepEqual(await ids(c, q, { lang: "ko", n: 2 }), []);
      });

      it("a payload array matches when any element matches", async () => {
        const c = await filtered();
        assert.deepEqual(await ids(c, q, { tags: "t2" }), ["c"]);
        assert.deepEqual(await ids(c, q, { tags: ["zz", "t1"] }), ["c"]);
      });

      it("matches nothing for a missing field or an unknown value", async () => {
        const c = await filtered();
        assert.deepEqual(await ids(c, q, { lang: "fr" }), []);
        assert.deepEqual(await ids(c, q, { nope: "ko" }), []);
        assert.deepEqual(await ids(c, q, { "meta.src.deeper": "x" }), []);
      });

      it("applies topK after filtering", async () => {
        const c = await filtered();
        const hits = await store.search(c, Float32Array.from([0, 1]), 1, { lang: "ko" });
        assert.deepEqual(
          hits.map((h) => h.chunkId),
          ["c"],
        );
      });
    });

    describe("deleteDocument", () => {
      it("removes only that document's points and returns how many", async () => {
        const c = await cosineCollection(2);
        const other = await cosineCollection(2);
        await seed(store, c, [
          makeRecord(c, "a1", [1, 0], { documentId: "A" }),
          makeRecord(c, "a2", [0, 1], { documentId: "A" }),
          makeRecord(c, "b1", [1, 1], { documentId: "B" }),
          makeRecord(c, "n1", [1, 2], { documentId: null }),
        ]);
        await seed(store, other, [makeRecord(other, "a1", [1, 0], { documentId: "A" })]);

        const all = Number.MAX_SAFE_INTEGER;
        const first = await store.deleteDocument(c, "A", all);
        assert.deepEqual(
          { ...first, chunkIds: [...first.chunkIds].sort() },
          { deleted: 2, chunkIds: ["a1", "a2"] },
        );
        assert.equal(await store.count(c), 2);
        assert.deepEqual(await ids(c, [1, 0]), ["b1", "n1"]);
        assert.equal(await store.count(other), 1);
        assert.deepEqual(await store.deleteDocument(c, "A", all), { deleted: 0, chunkIds: [] });
        assert.deepEqual(await store.deleteDocument(c, "missing", all), { deleted: 0, chunkIds: [] });
        assert.deepEqual(await store.deleteDocument("no-such-collection", "A", all), {
          deleted: 0,
          chunkIds: [],
        });
      });
    });

    describe("deleteDocument below a version, deleteChunkVersions", () => {
      it("deletes only a document's points older than the version, and lists their chunk ids", async () => {
        const c = await cosineCollection(2);
        await seed(store, c, [
          makeRecord(c, "old", [1, 0], { documentId: "A", version: 3 }),
          makeRecord(c, "kept", [0, 1], { documentId: "A", version: 7 }),
          makeRecord(c, "newer", [1, 1], { documentId: "A", version: 9 }),
          makeRecord(c, "other", [1, 2], { documentId: "B", version: 1 }),
        ]);
        assert.deepEqual(await store.deleteDocument(c, "A", 7), { deleted: 1, chunkIds: ["old"] });
        assert.deepEqual(await ids(c, [1, 0]), ["kept", "newer", "other"]);
        assert.deepEqual(await store.deleteDocument(c, "A", 7), { deleted: 0, chunkIds: [] }, "idempotent");
      });

      it("deleteChunkVersions deletes a chunk's points at exactly that version", async () => {
        const c = await cosineCollection(2);
        await seed(store, c, [
          makeRecord(c, "x", [1, 0], { documentId: "A", version: 5 }),
          makeRecord(c, "y", [0, 1], { documentId: "A", version: 6 }),
        ]);
        assert.equal(
          await store.deleteChunkVersions(c, [
            { chunkId: "x", version: 4 },
            { chunkId: "y", version: 6 },
          ]),
          1,
        );
        assert.deepEqual(await ids(c, [1, 0]), ["x"]);
      });
    });

    describe("parentTexts", () => {
      const TEXT =
        "제1조(목적) 이 약관은 회사가 제공하는 서비스의 이용 조건을 정한다.\n\n제2조(정의) 회원이란 약관에 동의한 자를 말한다.";
      const WINDOWS = [
        "제1조(목적) 이 약관은 회사가",
        "회사가 제공하는 서비스의 이용 조건을 정한다.",
        "제2조(정의) 회원이란 약관에 동의한 자를 말한다.",
      ];

      it("puts split chunks' texts back together from their windows; whole chunks and unknown ids are absent", async () => {
        const c = await cosineCollection(2);
        const other = "English text cut  in two";
        assert.deepEqual(
          await store.writeChunks(c, [
            splitTextWrite(c, "terms", TEXT, WINDOWS),
            splitTextWrite(c, "other", other, ["English text cut", "cut  in two"]),
            pointsWrite(c, "whole", [[1, 0]]),
          ]),
          ["written", "written", "written"],
        );
        const texts = await store.parentTexts(c, [
          { chunkId: "terms", windows: 3 },
          { chunkId: "other", windows: 2 },
          { chunkId: "whole", windows: 1 },
          { chunkId: "missing", windows: 4 },
        ]);
        assert.deepEqual([...texts.entries()].sort(), [
          ["other", other],
          ["terms", TEXT],
        ]);
      });

      it("gives the newest version's text, and nothing while a window is missing", async () => {
        const c = await cosineCollection(2);
        await store.writeChunks(c, [splitTextWrite(c, "terms", TEXT, WINDOWS, { version: 1 })]);
        const shorter = "제1조(목적) 이 약관은 서비스 이용 조건을 정한다.";
        const newer = splitTextWrite(
          c,
          "terms",
          shorter,
          ["제1조(목적) 이 약관은", "약관은 서비스 이용 조건을 정한다."],
          {
            version: 2,
            contentHash: sha256("v2"),
          },
        );
        assert.deepEqual(await store.writeChunks(c, [newer]), ["written"]);
        assert.equal((await store.parentTexts(c, [{ chunkId: "terms", windows: 2 }])).get("terms"), shorter);
        // A stale writer's three windows come and go; the text stays the newer one.
        assert.deepEqual(
          await store.writeChunks(c, [splitTextWrite(c, "terms", TEXT, WINDOWS, { version: 1 })]),
          ["superseded"],
        );
        assert.equal((await store.parentTexts(c, [{ chunkId: "terms", windows: 2 }])).get("terms"), shorter);

        const holed = splitTextWrite(c, "holed", TEXT, WINDOWS);
        holed.records = holed.records.filter((r) => r.windowIndex !== 1);
        await store.writeChunks(c, [holed]);
        assert.equal((await store.parentTexts(c, [{ chunkId: "holed", windows: 3 }])).has("holed"), false);
      });
    });

    describe("fingerprints", () => {
      it("returns the stored hashes and versions of existing ids only", async () => {
        const c = await cosineCollection(2);
        const a = makeRecord(c, "a", [1, 0], { contentHash: sha256("ca"), version: 7 });
        const b = makeRecord(c, "b", [0, 1], { contentHash: sha256("cb"), payload: { x: 1 }, version: 9 });
        await seed(store, c, [a, b]);
        const missing = pointId(c, "missing");
        const fp = await store.fingerprints(c, [a.id, missing, b.id]);
        assert.equal(fp.size, 2);
        assert.deepEqual(fp.get(a.id), {
          contentHash: a.contentHash,
          payloadHash: a.payloadHash,
          version: 7,
        });
        assert.deepEqual(fp.get(b.id), {
          contentHash: b.contentHash,
          payloadHash: b.payloadHash,
          version: 9,
        });
        assert.equal(fp.has(missing), false);
        assert.equal((await store.fingerprints(c, [])).size, 0);
      });

      it("reflects a newer write and handles more ids than one query batch", async () => {
        const c = await cosineCollection(2);
        const records = Array.from({ length: 1200 }, (_, i) => makeRecord(c, `k${i}`, [1, i]));
        await seed(store, c, records);
        const changed = makeRecord(c, "k5", [0, 1], { contentHash: sha256("new"), version: 2 });
        await seed(store, c, [changed]);
        const asked = [...records.map((r) => r.id), pointId(c, "absent")];
        const fp = await store.fingerprints(c, asked);
        assert.equal(fp.size, 1200);
        assert.deepEqual(fp.get(changed.id), {
          contentHash: sha256("new"),
          payloadHash: changed.payloadHash,
          version: 2,
        });
        assert.equal(fp.get(records[1100]!.id)?.contentHash, records[1100]!.contentHash);
      });
    });

    describe("versions: the newest version of a chunk always wins", () => {
      /** Every point's payload by its chunk id, in chunk id order. */
      async function stored(c: string, dimension: number): Promise<Map<string, Payload>> {
        const query = Float32Array.from({ length: dimension }, (_, i) => (i === 0 ? 1 : 0));
        const hits = await store.search(c, query, 100);
        const sorted = [...hits].sort((x, y) => x.chunkId.localeCompare(y.chunkId));
        return new Map(sorted.map((h) => [h.chunkId, h.payload]));
      }

      it("an older version than stored changes nothing and says superseded", async () => {
        const c = await cosineCollection(3);
        await seed(store, c, [makeRecord(c, "a", [1, 0, 0], { payload: { v: 5 }, version: 5 })]);
        const older = makeRecord(c, "a", [0, 1, 0], {
          payload: { v: 3 },
          contentHash: sha256("v3"),
          version: 3,
        });
        assert.deepEqual(await store.writeChunks(c, asChunks([older])), ["superseded"]);
        const [hit] = await store.search(c, Float32Array.from([1, 0, 0]), 5);
        assert.ok(hit && Math.abs(hit.score - 1) < SCORE_TOLERANCE, "the vector of version 5 stays");
        assert.deepEqual(hit.payload, { v: 5 });
        assert.equal((await store.fingerprints(c, [older.id])).get(older.id)?.version, 5);
        assert.equal(await store.count(c), 1);
      });

      it("writing the stored version again changes nothing and says written (a crash before the ack)", async () => {
        const c = await cosineCollection(2);
        const first = pointsWrite(
          c,
          "p",
          [
            [1, 0],
            [0, 1],
            [1, 1],
          ],
          { payload: { v: "first" }, version: 4 },
        );
        assert.deepEqual(await store.writeChunks(c, [first]), ["written"]);
        const again = pointsWrite(
          c,
          "p",
          [
            [1, 0],
            [0, 1],
            [1, 1],
          ],
          { payload: { v: "again" }, version: 4 },
        );
        assert.deepEqual(await store.writeChunks(c, [again]), ["written"]);
        assert.equal(await store.count(c), 3);
        assert.deepEqual(
          [...(await stored(c, 2)).values()].map((p) => p.v),
          ["first", "first", "first"],
        );
      });

      it("a chunk that shrinks from 5 windows to 2 keeps exactly its 2 new windows", async () => {
        const c = await cosineCollection(2);
        const five = [
          [1, 0],
          [1, 1],
          [0, 1],
          [1, 2],
          [2, 1],
        ];
        await store.writeChunks(c, [pointsWrite(c, "p", five, { payload: { v: 1 }, version: 1 })]);
        await seed(store, c, [makeRecord(c, "other", [1, 0])]);
        assert.equal(await store.count(c), 6);
        const two = pointsWrite(
          c,
          "p",
          [
            [1, 0],
            [0, 1],
          ],
          { payload: { v: 2 }, contentHash: sha256("v2"), version: 2 },
        );
        assert.deepEqual(await store.writeChunks(c, [two]), ["written"]);
        const points = await stored(c, 2);
        assert.deepEqual([...points.keys()], ["other", "p#0", "p#1"]);
        assert.deepEqual(points.get("p#1"), { v: 2, window_index: 1 });
      });

      it("a stale writer's 5 windows after a newer 2-window write leave exactly the newer 2", async () => {
        const c = await cosineCollection(2);
        const newer = pointsWrite(
          c,
          "p",
          [
            [1, 0],
            [0, 1],
          ],
          { payload: { v: 2 }, contentHash: sha256("v2"), version: 2 },
        );
        assert.deepEqual(await store.writeChunks(c, [newer]), ["written"]);
        // Windows 2..4 do not exist: on Qdrant the stale upsert inserts them (update_filter spares new
        // points), and the clean-up after the read-back removes them again.
        const stale = pointsWrite(
          c,
          "p",
          [
            [0, 1],
            [1, 0],
            [1, 1],
            [1, 2],
            [2, 1],
          ],
          { payload: { v: 1 }, version: 1 },
        );
        assert.deepEqual(await store.writeChunks(c, [stale]), ["superseded"]);
        const points = await stored(c, 2);
        assert.deepEqual([...points.keys()], ["p#0", "p#1"]);
        assert.deepEqual(points.get("p#0"), { v: 2, window_index: 0 });
        const [top] = await store.search(c, Float32Array.from([1, 0]), 1);
        assert.equal(top?.chunkId, "p#0", "window 0 keeps the newer vector");
        assert.ok(top && Math.abs(top.score - 1) < SCORE_TOLERANCE);
      });

      it("a client chunk id shaped like a window's (p#0, p#1) is a chunk of its own, apart from chunk p's windows", async () => {
        // Window 0 is known by its window index, never by an id ending in "#0": a store that matched
        // ids would take client chunk "p#0" for p's fingerprint, or clean it up with p's windows.
        const c = await cosineCollection(2);
        const split = (windows: number, version: number) =>
          pointsWrite(
            c,
            "p",
            Array.from({ length: windows }, (_, i) => [1, i]),
            { payload: { who: `p v${version}` }, contentHash: sha256(`p v${version}`), version },
          );
        const client = (chunkId: string) =>
          pointsWrite(c, chunkId, [[0, 1]], {
            payload: { who: chunkId },
            contentHash: sha256(chunkId),
            version: 1,
          });
        const fingerprint = async (chunkId: string) =>
          (await store.fingerprints(c, [pointId(c, chunkId)])).get(pointId(c, chunkId));
        const who = async () =>
          (await store.search(c, Float32Array.from([1, 0]), 100)).map((h) => String(h.payload.who)).sort();

        assert.deepEqual(await store.writeChunks(c, [split(3, 1), client("p#0"), client("p#1")]), [
          "written",
          "written",
          "written",
        ]);
        assert.equal(await store.count(c), 5);
        assert.deepEqual(
          [await fingerprint("p"), await fingerprint("p#0"), await fingerprint("p#1")].map(
            (f) => f?.contentHash,
          ),
          [sha256("p v1"), sha256("p#0"), sha256("p#1")],
        );

        // p shrinks to two windows at version 2: its third window goes, the client's chunks stay.
        assert.deepEqual(await store.writeChunks(c, [split(2, 2)]), ["written"]);
        assert.deepEqual(await who(), ["p v2", "p v2", "p#0", "p#1"]);
        // A touch of client chunk p#1 moves it alone; p's window 1 keeps version 2.
        const touch: ChunkWrite = {
          kind: "touch",
          chunkId: "p#1",
          version: 3,
          contentHash: sha256("p#1"),
          payload: null,
        };
        assert.deepEqual(await store.writeChunks(c, [touch]), ["written"]);
        assert.deepEqual([(await fingerprint("p"))?.version, (await fingerprint("p#1"))?.version], [2, 3]);
        // Deleting client chunk p#0's version 1 deletes its one point, none of p's.
        assert.equal(await store.deleteChunkVersions(c, [{ chunkId: "p#0", version: 1 }]), 1);
        assert.deepEqual(await who(), ["p v2", "p v2", "p#1"]);
      });

      it("results come in input order; two versions of one chunk in one call leave the newer", async () => {
        const c = await cosineCollection(2);
        const results = await store.writeChunks(c, [
          pointsWrite(c, "x", [[1, 0]], { payload: { v: 8 }, version: 8 }),
          pointsWrite(c, "y", [[0, 1]], { payload: { v: 2 }, version: 2 }),
          pointsWrite(
            c,
            "x",
            [
              [0, 1],
              [1, 1],
              [1, 2],
            ],
            { payload: { v: 6 }, contentHash: sha256("x6"), version: 6 },
          ),
        ]);
        assert.deepEqual(results, ["written", "written", "superseded"]);
        const points = await stored(c, 2);
        assert.deepEqual([...points.keys()], ["x", "y"]);
        assert.deepEqual(points.get("x"), { v: 8 });
      });

      it("touch moves every window to the new version when the content hash matches", async () => {
        const c = await cosineCollection(2);
        const write = pointsWrite(
          c,
          "p",
          [
            [1, 0],
            [0, 1],
            [1, 1],
          ],
          { contentHash: sha256("same"), version: 1 },
        );
        await store.writeChunks(c, [write]);
        const ids = write.records.map((r) => r.id);
        const touch = (version: number, contentHash: string): ChunkWrite => ({
          kind: "touch",
          chunkId: "p",
          version,
          contentHash,
          payload: null,
        });
        assert.deepEqual(await store.writeChunks(c, [touch(3, sha256("same"))]), ["written"]);
        const versions = async () => [...(await store.fingerprints(c, ids)).values()].map((f) => f.version);
        assert.deepEqual(await versions(), [3, 3, 3]);
        assert.deepEqual(await store.writeChunks(c, [touch(5, sha256("other"))]), ["changed"]);
        assert.deepEqual(await versions(), [3, 3, 3], "another content hash moves nothing");
        assert.deepEqual(await store.writeChunks(c, [touch(2, sha256("same"))]), ["superseded"]);
        assert.deepEqual(await versions(), [3, 3, 3]);
        assert.deepEqual(await store.writeChunks(c, [{ ...touch(9, sha256("same")), chunkId: "gone" }]), [
          "changed",
        ]);
        assert.equal(await store.count(c), 3);
      });

      it("touch with a payload replaces payload, payload hash and document id, never the vector", async () => {
        const c = await cosineCollection(3);
        const a = makeRecord(c, "a", [1, 2, 3], {
          documentId: "A",
          payload: { v: "old", gone: 1 },
          version: 1,
        });
        await seed(store, c, [a]);
        const payload: Payload = { v: "new", extra: [1] };
        const payloadHash = sha256(canonicalJson(payload));
        const results = await store.writeChunks(c, [
          {
            kind: "touch",
            chunkId: "a",
            version: 2,
            contentHash: a.contentHash,
            payload: { payload, payloadHash, documentId: "B" },
          },
        ]);
        assert.deepEqual(results, ["written"]);
        assert.equal(await store.count(c), 1);
        const [hit] = await store.search(c, Float32Array.from([1, 2, 3]), 5);
        assert.ok(hit && Math.abs(hit.score - 1) < SCORE_TOLERANCE, `vector changed: score ${hit?.score}`);
        assert.deepEqual(hit.payload, payload);
        assert.deepEqual((await store.fingerprints(c, [a.id])).get(a.id), {
          contentHash: a.contentHash,
          payloadHash,
          version: 2,
        });
        assert.equal((await store.deleteDocument(c, "A", Number.MAX_SAFE_INTEGER)).deleted, 0);
        assert.equal((await store.deleteDocument(c, "B", Number.MAX_SAFE_INTEGER)).deleted, 1);
      });

      it("a touch with a payload over a newer version changes nothing", async () => {
        const c = await cosineCollection(2);
        const a = makeRecord(c, "a", [1, 0], { payload: { v: "newer" }, version: 4 });
        await seed(store, c, [a]);
        const payload: Payload = { v: "older" };
        const results = await store.writeChunks(c, [
          {
            kind: "touch",
            chunkId: "a",
            version: 3,
            contentHash: a.contentHash,
            payload: { payload, payloadHash: sha256(canonicalJson(payload)), documentId: "X" },
          },
        ]);
        assert.deepEqual(results, ["superseded"]);
        assert.deepEqual((await stored(c, 2)).get("a"), { v: "newer" });
        assert.equal((await store.fingerprints(c, [a.id])).get(a.id)?.payloadHash, a.payloadHash);
      });

      it("points written without a version count as older than any version", async () => {
        const c = await cosineCollection(2);
        const legacySplit = pointsWrite(
          c,
          "p",
          [
            [1, 0],
            [0, 1],
            [1, 1],
          ],
          { payload: { v: "legacy" } },
        );
        const legacyPlain = makeRecord(c, "q", [1, 2], {
          payload: { v: "legacy" },
          contentHash: sha256("q"),
        });
        await fixture.seedUnversioned(c, [...legacySplit.records, legacyPlain]);
        const fp = await store.fingerprints(c, [pointId(c, "p"), legacyPlain.id]);
        assert.deepEqual(
          [...fp.values()].map((f) => f.version),
          [null, null],
        );

        const newer = pointsWrite(
          c,
          "p",
          [
            [1, 0],
            [0, 1],
          ],
          { payload: { v: "new" }, contentHash: sha256("new"), version: 1 },
        );
        const touch: ChunkWrite = {
          kind: "touch",
          chunkId: "q",
          version: 1,
          contentHash: sha256("q"),
          payload: null,
        };
        assert.deepEqual(await store.writeChunks(c, [newer, touch]), ["written", "written"]);
        const points = await stored(c, 2);
        assert.deepEqual([...points.keys()], ["p#0", "p#1", "q"], "the unversioned third window is gone");
        assert.deepEqual(points.get("p#1"), { v: "new", window_index: 1 });
        assert.equal((await store.fingerprints(c, [legacyPlain.id])).get(legacyPlain.id)?.version, 1);
      });
    });
  });
}
