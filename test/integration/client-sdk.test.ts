import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type Chunk, RagEmbedClient, RagEmbedError } from "../../src/client/index.js";
import { tempDir } from "../helpers/paths.js";
import { type ServerProcess, startServerProcess, waitUntilReady } from "../helpers/server-process.js";

describe("client SDK against a real server whose queue holds 100 chunks", () => {
  let server: ServerProcess;
  const statuses = new Map<number, number>();
  const countingFetch: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
    return response;
  };

  before(async () => {
    server = await startServerProcess({
      DATA_DIR: tempDir("sdk"),
      MAX_QUEUE_SIZE: "100",
      RESERVE_MAX_CHUNKS: "16",
    });
    await waitUntilReady(server.url);
  });
  after(async () => {
    assert.equal(await server.stop("SIGTERM"), 0);
  });

  it("ingests 1,000 chunks through 429s without loss or duplicates", async () => {
    const client = new RagEmbedClient({ baseUrl: server.url, fetch: countingFetch });
    const chunks: Chunk[] = Array.from({ length: 1000 }, (_, i) => ({
      id: `sdk-${i}`,
      text: `Chunk ${i}: ${"the tablet is taken with water after meals. ".repeat(1 + (i % 6))}`,
      document_id: `doc-${Math.floor(i / 10)}`,
      metadata: { n: i },
    }));
    const progress: number[] = [];
    const retries: string[] = [];
    const result = await client.ingest("sdk", chunks, {
      batchSize: 40,
      onProgress: (p) => progress.push(p.accepted),
      onRetry: (r) => retries.push(r.code),
    });
    assert.equal(result.accepted, 1000);
    assert.equal(result.jobIds.length, 25, "one job per request: none resent after a 202");
    assert.ok(
      (statuses.get(429) ?? 0) >= 1,
      `the queue pushed back at least once (statuses ${[...statuses]})`,
    );
    assert.ok(retries.includes("queue_full"));
    assert.equal(progress.at(-1), 1000);

    let total = 0;
    for (const id of result.jobIds) {
      const job = await client.waitForJob(id, { timeoutMs: 180_000, intervalMs: 200 });
      assert.equal(job.state, "done");
      assert.equal(job.counts.dead, 0);
      total += job.counts.stored + job.counts.unchanged;
    }
    assert.equal(total, 1000);

    const { hits } = await client.search("sdk", "tablet with water", { topK: 10_000 });
    const ids = new Set(hits.map((h) => h.id));
    assert.equal(hits.length, 1000, "exactly one point per chunk");
    assert.equal(ids.size, 1000);
    for (const chunk of chunks) assert.ok(ids.has(String(chunk.id)), `${chunk.id} stored`);

    const filtered = await client.search("sdk", "tablet", { topK: 100, filter: { document_id: "doc-3" } });
    assert.deepEqual(
      filtered.hits.map((h) => h.id).sort(),
      Array.from({ length: 10 }, (_, i) => `sdk-${30 + i}`).sort(),
    );

    const status = await client.status();
    assert.equal(status.queue.max_queue_size, 100);
    assert.equal(status.model.ready, true);
    const seed = await client.seedStatus(0.5);
    assert.equal(seed.max_queue_size, 100);
  });

  it("splits a request larger than the whole queue instead of waiting forever", async () => {
    const client = new RagEmbedClient({ baseUrl: server.url });
    const chunks: Chunk[] = Array.from({ length: 150 }, (_, i) => ({
      id: `big-${i}`,
      text: `big chunk ${i}`,
    }));
    const result = await client.ingest("sdk-big", chunks, { batchSize: 150 });
    assert.equal(result.accepted, 150);
    for (const id of result.jobIds) await client.waitForJob(id, { timeoutMs: 120_000 });
    const { hits } = await client.search("sdk-big", "big chunk", { topK: 1000 });
    assert.equal(new Set(hits.map((h) => h.id)).size, 150);
  });

  it("throws a typed RagEmbedError for other 4xx", async () => {
    const client = new RagEmbedClient({ baseUrl: server.url });
    await assert.rejects(
      client.ingest("sdk", [
        { id: "dup", text: "a" },
        { id: "dup", text: "b" },
      ]),
      (error: unknown) =>
        error instanceof RagEmbedError && error.code === "duplicate_chunk_id" && error.status === 400,
    );
    await assert.rejects(
      client.job("no-such-job"),
      (error: unknown) =>
        error instanceof RagEmbedError && error.code === "job_not_found" && error.status === 404,
    );
    const dead = await client.deadLetters();
    assert.deepEqual(dead.dead_letters, []);
    assert.deepEqual(await client.replayDeadLetters({ all: true }), { replayed: 0 });
  });

  it("gives up on an unreachable server with network_error after its retries", async () => {
    const client = new RagEmbedClient({ baseUrl: "http://127.0.0.1:9", maxNetworkRetries: 2 });
    await assert.rejects(
      client.status(),
      (error: unknown) => error instanceof RagEmbedError && error.code === "network_error",
    );
  });
});
