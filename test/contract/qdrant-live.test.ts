import { describe, it } from "node:test";
import { QdrantStore } from "../../src/vector-store/qdrant/qdrant-store.js";
import { putUnversionedPoints } from "../helpers/qdrant-unversioned.js";
import { vectorStoreContract } from "./vector-store.contract.js";

/**
 * The shared VectorStore contract against a real Qdrant:
 *   QDRANT_URL=http://127.0.0.1:6333 node --import tsx --test test/contract/qdrant-live.test.ts
 * Each test uses a fresh collection name (c_xxxxxxxx); they are left behind on the server: the
 * collection c_xxxxxxxx__v1 with its alias c_xxxxxxxx, and the versions tests' c_xxxxxxxx__v2. The
 * shared contract includes those versions tests (cutover and rollback through Qdrant's aliases, a
 * swap to a missing version, scanChunks), so they run against the live server too.
 */
const url = process.env.QDRANT_URL;

if (url === undefined || url === "") {
  describe("VectorStore contract: QdrantStore (live)", {
    skip: "QDRANT_URL not set: no live Qdrant to test against",
  }, () => {
    it("runs the shared contract against a live Qdrant", () => {});
  });
} else {
  vectorStoreContract(`QdrantStore (live, ${url})`, async () => {
    const apiKey = process.env.QDRANT_API_KEY || undefined;
    const store = new QdrantStore({ url, ...(apiKey === undefined ? {} : { apiKey }), timeoutMs: 30_000 });
    return {
      store,
      seedUnversioned: (collection, records) => putUnversionedPoints(url, apiKey, collection, records),
      cleanup: () => store.close(),
    };
  });
}
