import { describe, it } from "node:test";
import { QdrantStore } from "../../src/vector-store/qdrant/qdrant-store.js";
import { vectorStoreContract } from "./vector-store.contract.js";

/**
 * The shared VectorStore contract against a real Qdrant:
 *   QDRANT_URL=http://127.0.0.1:6333 node --import tsx --test test/contract/qdrant-live.test.ts
 * Each test uses a fresh collection name (c_xxxxxxxx); they are left behind on the server.
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
    const store = new QdrantStore({
      url,
      ...(process.env.QDRANT_API_KEY ? { apiKey: process.env.QDRANT_API_KEY } : {}),
      timeoutMs: 30_000,
    });
    return { store, cleanup: () => store.close() };
  });
}
