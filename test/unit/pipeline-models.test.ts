import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import { bindingFor, modelFingerprint } from "../../src/domain/model-binding.js";
import type { ModelInfo, NewChunk } from "../../src/domain/types.js";
import type { Embedder } from "../../src/embedder/embedder.js";
import { ModelRoster } from "../../src/embedder/model-roster.js";
import { ThroughputMeter } from "../../src/observability/throughput-meter.js";
import { SequentialCommitter } from "../../src/pipeline/batch-committer.js";
import { IngestPipeline } from "../../src/pipeline/ingest-pipeline.js";
import { SqliteJobQueue } from "../../src/queue/sqlite/sqlite-job-queue.js";
import { openSqliteDatabase } from "../../src/storage/sqlite-database.js";
import { fakeEmbedder, memoryStore } from "../helpers/in-memory-backends.js";

/**
 * The pipeline with two served models: each collection's chunks are embedded by the model its
 * binding names (a new one by the default), and chunks for a version that does not exist yet wait
 * for its re-embed to create it instead of creating it bound to the default model.
 */

/** A fake model under its own name: its own fingerprint, and a count of the texts it embedded. */
function namedEmbedder(name: string): Embedder & { texts: string[] } {
  const inner = fakeEmbedder();
  const info: ModelInfo = { ...inner.info(), id: name };
  const texts: string[] = [];
  return Object.assign(Object.create(inner) as Embedder, {
    texts,
    info: () => info,
    load: async () => info,
    embed(batch: string[], kind: "passage" | "query") {
      texts.push(...batch);
      return inner.embed(batch, kind);
    },
  });
}

const chunk = (id: string): NewChunk => ({
  chunkId: id,
  text: `text of ${id}`,
  documentId: null,
  payload: {},
  estimatedTokens: 4,
  overflow: { policy: "truncate", overlapTokens: 0 },
});

async function until(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 2_000; i++) {
    if (await condition()) return;
    await sleep(5);
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe("IngestPipeline with several models", () => {
  const db = openSqliteDatabase(":memory:");
  const queue = new SqliteJobQueue(db);
  const store = memoryStore();
  const a = namedEmbedder("model-a");
  const b = namedEmbedder("model-b");
  const roster = ModelRoster.of([
    { embedder: a, servedName: "a" },
    { embedder: b, servedName: "b" },
  ]);
  let pipeline: IngestPipeline | null = null;
  afterEach(async () => {
    await pipeline?.stop(1_000);
  });

  async function enqueue(collection: string, ids: string[]): Promise<string> {
    const result = await queue.enqueue({ collection, chunks: ids.map(chunk), maxQueueSize: 1_000 });
    assert.ok(result.accepted);
    return result.jobId;
  }

  it("embeds each collection with its bound model, a new one with the default; a missing version waits", async () => {
    await roster.load();
    const infoB = b.info();
    await store.ensureCollection({
      name: "by-b",
      dimension: 4,
      distance: "Cosine",
      binding: bindingFor(infoB),
    });
    pipeline = new IngestPipeline(
      {
        queue,
        store,
        embedder: a,
        models: roster,
        committer: new SequentialCommitter(store, queue),
        throughput: new ThroughputMeter(),
        logger: pino({ level: "silent" }),
      },
      {
        reserveMaxChunks: 100,
        reserveMaxTokens: 100_000,
        leaseMs: 60_000,
        maxParallelTasks: 1,
        maxRate: 0,
        maxAttempts: 5,
        retryBaseMs: 50,
        retryMaxMs: 50,
        distance: "Cosine",
        idlePollMs: 20,
        sliceMaxTokens: 1_000,
      },
    );
    const bJob = await enqueue("by-b", ["b1", "b2"]);
    const newJob = await enqueue("fresh", ["f1"]);
    const versionJob = await enqueue("docs__v2", ["v1"]);
    pipeline.start();
    const stored = async (jobId: string) => (await queue.getJob(jobId))?.counts.stored ?? 0;
    await until("both jobs stored", async () => (await stored(bJob)) === 2 && (await stored(newJob)) === 1);
    assert.deepEqual(b.texts.sort(), ["text of b1", "text of b2"]);
    assert.deepEqual(a.texts, ["text of f1"]);
    const fresh = await store.describeCollection("fresh");
    assert.equal(fresh?.binding?.fingerprint, modelFingerprint(a.info()));

    // The version is not created by its chunks: they wait (retried, not dead) until it exists.
    await sleep(200);
    assert.equal(await store.describeCollection("docs__v2"), null);
    const waiting = await queue.getJob(versionJob);
    assert.equal(waiting?.counts.stored, 0);
    assert.equal(waiting?.counts.dead, 0);
    await store.ensureCollection({
      name: "docs__v2",
      dimension: 4,
      distance: "Cosine",
      binding: bindingFor(infoB),
    });
    await until("the version's chunk stored", async () => (await stored(versionJob)) === 1);
    assert.ok(b.texts.includes("text of v1"), "embedded by the model the version is bound to");
  });
});
