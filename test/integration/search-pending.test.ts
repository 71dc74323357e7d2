import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { HttpServer } from "../../src/main.js";
import { waitForJobDone } from "../helpers/fixtures.js";
import { startInProcess } from "../helpers/in-process-server.js";
import { postJson } from "../helpers/server-process.js";

describe("search right after an ingest: 200 with no hits and the pending count, not 404", () => {
  let server: HttpServer;
  /**
   * Storing waits here: the collection's creation in the store and passage embedding (query
   * embedding, for search, goes through).
   */
  const gate = { open: false, waiters: [] as Array<() => void> };

  before(async () => {
    server = await startInProcess(
      {},
      {
        decorateStore: (inner) =>
          new Proxy(inner, {
            get(target, property) {
              const value: unknown = Reflect.get(target, property, target);
              if (property === "ensureCollection") {
                return async (...args: Parameters<typeof target.ensureCollection>) => {
                  await passGate();
                  return target.ensureCollection(...args);
                };
              }
              return typeof value === "function" ? value.bind(target) : value;
            },
          }),
        decorateEmbedder: (inner) =>
          new Proxy(inner, {
            get(target, property) {
              const value: unknown = Reflect.get(target, property, target);
              if (property === "embed") {
                return async (...args: Parameters<typeof target.embed>) => {
                  if (args[1] === "passage") await passGate();
                  return target.embed(...args);
                };
              }
              return typeof value === "function" ? value.bind(target) : value;
            },
          }),
      },
    );
  });
  after(async () => {
    openGate();
    await server.shutdown(2000);
  });

  async function passGate(): Promise<void> {
    if (!gate.open) await new Promise<void>((resolve) => gate.waiters.push(resolve));
  }

  function openGate(): void {
    gate.open = true;
    for (const resolve of gate.waiters.splice(0)) resolve();
  }

  it("says how many chunks are pending while none is stored; a collection never ingested stays 404", async () => {
    const accepted = await postJson<{ job_id: string }>(`${server.url}/v1/collections/fresh/chunks`, {
      chunks: Array.from({ length: 5 }, (_, i) => ({ id: `c${i}`, text: `chunk number ${i}` })),
    });
    assert.equal(accepted.status, 202);

    const pending = await postJson<{ hits: unknown[]; pending?: number }>(
      `${server.url}/v1/collections/fresh/search`,
      {
        query: "chunk",
      },
    );
    assert.equal(pending.status, 200, JSON.stringify(pending.body));
    assert.deepEqual(pending.body, { hits: [], pending: 5 });

    const never = await postJson<{ error: { code: string } }>(`${server.url}/v1/collections/never/search`, {
      query: "chunk",
    });
    assert.equal(never.status, 404);
    assert.equal(never.body.error.code, "collection_not_found");

    openGate();
    await waitForJobDone(server.url, accepted.body.job_id);
    const stored = await postJson<{ hits: unknown[]; pending?: number }>(
      `${server.url}/v1/collections/fresh/search`,
      {
        query: "chunk",
      },
    );
    assert.equal(stored.status, 200);
    assert.equal(stored.body.hits.length, 5);
    assert.equal(stored.body.pending, undefined);

    // The collection exists now; chunks of a new document wait again. A search that finds nothing
    // says they are pending.
    gate.open = false;
    const more = await postJson<{ job_id: string }>(`${server.url}/v1/collections/fresh/chunks`, {
      chunks: Array.from({ length: 3 }, (_, i) => ({
        id: `n${i}`,
        text: `new ${i}`,
        document_id: "new-doc",
      })),
    });
    assert.equal(more.status, 202);
    const empty = await postJson<{ hits: unknown[]; pending?: number }>(
      `${server.url}/v1/collections/fresh/search`,
      {
        query: "new",
        filter: { document_id: "new-doc" },
      },
    );
    assert.deepEqual(empty.body, { hits: [], pending: 3 });
  });
});
