import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AppError } from "../../src/domain/errors.js";
import { bindingFor, modelFingerprint } from "../../src/domain/model-binding.js";
import type { ModelInfo } from "../../src/domain/types.js";
import type { ServedModel } from "../../src/embedder/model-roster.js";
import { CollectionBindings } from "../../src/server/collection-bindings.js";
import { openSqliteDatabase } from "../../src/storage/sqlite-database.js";
import { SqliteVecStore } from "../../src/vector-store/sqlite-vec/sqlite-vec-store.js";
import { fakeEmbedder } from "../helpers/in-memory-backends.js";

/**
 * Where admission queues a request's chunks with several models served: the collection's own
 * model, a copy for the version a re-embed builds (dual writes), the version alone when the old
 * model is not served, and 409 for a model the collection is not bound to.
 */

const model = (id: string): ServedModel & { info: ModelInfo } => {
  const embedder = fakeEmbedder();
  return { embedder, info: { ...embedder.info(), id } };
};
const A = model("model-a");
const B = model("model-b");
const C = model("model-c");

async function storeWith(versions: Array<[string, ModelInfo]>): Promise<SqliteVecStore> {
  const store = new SqliteVecStore(openSqliteDatabase(":memory:"));
  for (const [name, info] of versions) {
    await store.ensureCollection({ name, dimension: 4, distance: "Cosine", binding: bindingFor(info) });
  }
  return store;
}

/** A roster serving `served`, looked up by fingerprint as admission's is. */
const roster = (...served: ServedModel[]) => ({
  byFingerprint: (fingerprint: string) =>
    served.find((m) => m.info !== null && modelFingerprint(m.info) === fingerprint),
});

describe("CollectionBindings.route with several models", () => {
  it("with both models served, queues into the name and copies into the version being built", async () => {
    const store = await storeWith([
      ["docs", A.info],
      ["docs__v2", B.info],
    ]);
    const bindings = new CollectionBindings(store, roster(A, B));
    const route = await bindings.route("docs", A.info);
    assert.deepEqual(
      [route.collection, route.alsoTo, route.model?.info?.id],
      ["docs", "docs__v2", "model-a"],
    );
    // Naming the new model writes into the new version alone.
    const named = await bindings.route("docs", A.info, B);
    assert.deepEqual([named.collection, named.alsoTo, named.model?.info?.id], ["docs__v2", null, "model-b"]);
  });

  it("without the old model, queues into the version being built alone; with neither, 409", async () => {
    const store = await storeWith([
      ["docs", A.info],
      ["docs__v2", B.info],
    ]);
    const route = await new CollectionBindings(store, roster(B)).route("docs", B.info);
    assert.deepEqual([route.collection, route.alsoTo, route.model?.info?.id], ["docs__v2", null, "model-b"]);
    await assert.rejects(new CollectionBindings(store, roster(C)).route("docs", C.info), (error: unknown) => {
      assert.ok(error instanceof AppError);
      assert.equal(error.code, "model_mismatch");
      return true;
    });
  });

  it("a model the collection is not bound to is refused, naming both; no version, no copy", async () => {
    const store = await storeWith([["docs", A.info]]);
    const bindings = new CollectionBindings(store, roster(A, B));
    const plain = await bindings.route("docs", A.info);
    assert.deepEqual([plain.collection, plain.alsoTo], ["docs", null]);
    await assert.rejects(bindings.route("docs", A.info, B), (error: unknown) => {
      assert.ok(error instanceof AppError);
      assert.equal(error.code, "model_mismatch");
      assert.match(error.message, /model-a.*model-b/s);
      return true;
    });
  });

  it("a new collection named with a non-default model is created bound to it at admission", async () => {
    const store = await storeWith([]);
    const bindings = new CollectionBindings(store, roster(A, B));
    const route = await bindings.route("fresh", A.info, B);
    assert.equal(route.collection, "fresh");
    const described = await store.describeCollection("fresh");
    assert.equal(described?.binding?.fingerprint, modelFingerprint(B.info));
    // With the default model nothing is created here: the pipeline creates it with its first chunk.
    await bindings.route("other", A.info);
    assert.equal(await store.describeCollection("other"), null);
  });
});
