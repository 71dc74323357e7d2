import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Embedder } from "../../src/embedder/embedder.js";
import type { HttpServer } from "../../src/main.js";
import { waitForJobDone } from "../helpers/fixtures.js";
import { startInProcess } from "../helpers/in-process-server.js";
import { postJson } from "../helpers/server-process.js";

/** The real embedder, except that any call containing the poisonous text fails (as a tokenizer bug would). */
function poisonable(inner: Embedder): Embedder {
  return {
    load: () => inner.load(),
    info: () => inner.info(),
    countTokens: (texts, kind) => inner.countTokens(texts, kind),
    close: () => inner.close(),
    embed: async (texts, kind, overflow) => {
      if (texts.some((t) => t.includes("POISON"))) throw new Error("tokenizer crashed on this text");
      return inner.embed(texts, kind, overflow);
    },
  };
}

describe("one poisonous chunk fails alone; its batch mates are stored", () => {
  let server: HttpServer;
  before(async () => {
    server = await startInProcess(
      { MAX_ATTEMPTS: "3", RETRY_BASE_MS: "20", RETRY_MAX_MS: "50", RESERVE_MAX_CHUNKS: "64" },
      { decorateEmbedder: poisonable },
    );
  });
  after(async () => {
    await server.shutdown(2000);
  });

  it("stores the other 19 at once and dead-letters only the poisonous one after its retries", async () => {
    const chunks = Array.from({ length: 20 }, (_, i) => ({
      id: `p-${i}`,
      text: i === 7 ? "POISON pill" : `text ${i}`,
    }));
    const accepted = await postJson<{ job_id: string }>(`${server.url}/v1/collections/poison/chunks`, {
      chunks,
    });
    const job = await waitForJobDone(server.url, accepted.body.job_id);
    assert.equal(job.counts.stored, 19);
    assert.equal(job.counts.dead, 1);
    assert.deepEqual(
      job.failures.map((f) => f.chunk_id),
      ["p-7"],
    );
    assert.match(job.failures[0]?.reason ?? "", /tokenizer crashed/);
    assert.equal((job.failures[0] as { attempts?: number }).attempts, 3, "its whole retry budget was used");
  });
});
