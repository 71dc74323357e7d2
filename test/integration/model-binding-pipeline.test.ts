/**
 * The pipeline's side of collection bindings: chunks accepted for a collection that another server
 * bound to another model before they ran (admission saw no collection yet) are refused by the store
 * and dead-lettered with model_mismatch, never written; chunks of other collections in the same
 * reservation are stored.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type ModelBinding, profileFingerprint } from "../../src/domain/model-binding.js";
import type { HttpServer } from "../../src/main.js";
import { waitForJobDone } from "../helpers/fixtures.js";
import { startInProcess } from "../helpers/in-process-server.js";
import { getJson, postJson } from "../helpers/server-process.js";

const identity = {
  model: "someone-else/other-model",
  weightsSha256: "0".repeat(64),
  dtype: "fp32",
  pooling: "mean" as const,
  normalize: true,
  prefixes: { passage: "", query: "" },
  maxTokens: 256,
  dimension: 384,
};
const FOREIGN: ModelBinding = {
  ...identity,
  fingerprint: profileFingerprint(identity),
  source: "/elsewhere",
  boundAt: new Date().toISOString(),
  adopted: false,
};

describe("pipeline: a collection bound to another model between admission and embedding", () => {
  let server: HttpServer;

  before(async () => {
    server = await startInProcess(
      { RESERVE_MAX_CHUNKS: "16" },
      {
        // Another server creates "raced" with its model the moment this one first ensures it.
        decorateStore: (store) => ({
          ...bindAll(store),
          ensureCollection: async (spec) => {
            if (spec.name === "raced") {
              await store.ensureCollection({ ...spec, binding: FOREIGN }).catch(() => {});
            }
            return store.ensureCollection(spec);
          },
        }),
      },
    );
  });
  after(async () => {
    await server.shutdown(2000);
  });

  it("dead-letters the raced collection's chunks with model_mismatch and stores the other collection's", async () => {
    const raced = await postJson<{ job_id: string }>(`${server.url}/v1/collections/raced/chunks`, {
      chunks: [
        { id: "r1", text: "first raced text" },
        { id: "r2", text: "second raced text" },
      ],
    });
    const fine = await postJson<{ job_id: string }>(`${server.url}/v1/collections/fine/chunks`, {
      chunks: [{ id: "f1", text: "a text for the fine collection" }],
    });
    assert.equal(raced.status, 202, "admission saw no collection yet");
    const racedJob = await waitForJobDone(server.url, raced.body.job_id);
    assert.equal(racedJob.counts.dead, 2);
    assert.equal(racedJob.counts.stored, 0);
    for (const failure of racedJob.failures) assert.match(failure.reason, /^model_mismatch: /);
    const fineJob = await waitForJobDone(server.url, fine.body.job_id);
    assert.equal(fineJob.counts.stored, 1);

    const racedInfo = await getJson<{ points: number; binding: { fingerprint: string } }>(
      `${server.url}/v1/collections/raced`,
    );
    assert.equal(racedInfo.body.points, 0, "nothing of this model was written into it");
    assert.equal(racedInfo.body.binding.fingerprint, FOREIGN.fingerprint);
  });
});

/** The store's methods bound to it, so a spread copy can override one of them. */
function bindAll<T extends object>(store: T): T {
  const proto = Object.getPrototypeOf(store) as object;
  const names = [...Object.getOwnPropertyNames(proto), ...Object.keys(store)];
  const bound: Record<string, unknown> = {};
  for (const name of names) {
    const value: unknown = Reflect.get(store, name);
    if (typeof value === "function" && name !== "constructor") bound[name] = value.bind(store);
  }
  return bound as T;
}
