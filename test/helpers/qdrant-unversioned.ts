import type { VectorRecord } from "../../src/domain/types.js";
import { RAG_KEY, ragFieldsOf } from "../../src/vector-store/qdrant/qdrant-payload.js";

/**
 * Puts points the way the Qdrant adapter wrote them before versions existed: `_rag` without
 * `version`. Plain REST, so it works against the contract server and a live Qdrant alike.
 */
export async function putUnversionedPoints(
  url: string,
  apiKey: string | undefined,
  collection: string,
  records: VectorRecord[],
): Promise<void> {
  const points = records.map((r) => {
    const { version: _version, ...rag } = ragFieldsOf(r);
    return { id: r.id, vector: Array.from(r.vector), payload: { ...r.payload, [RAG_KEY]: rag } };
  });
  const response = await fetch(`${url}/collections/${encodeURIComponent(collection)}/points?wait=true`, {
    method: "PUT",
    headers: { "content-type": "application/json", ...(apiKey === undefined ? {} : { "api-key": apiKey }) },
    body: JSON.stringify({ points }),
  });
  if (!response.ok)
    throw new Error(`putting unversioned points failed: HTTP ${response.status} ${await response.text()}`);
}
