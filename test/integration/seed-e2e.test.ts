import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type JobBody, seedChunks, waitForJobDone } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/paths.js";
import {
  getJson,
  postJson,
  type ServerProcess,
  startServerProcess,
  waitUntilReady,
} from "../helpers/server-process.js";

interface SearchBody {
  hits: Array<{ id: string; score: number; payload: Record<string, unknown> }>;
}

describe("seed-compatible API end to end over HTTP (real model directory, real SQLite)", () => {
  let server: ServerProcess;
  const chunks = seedChunks(60);

  before(async () => {
    server = await startServerProcess({ DATA_DIR: tempDir("e2e") });
    await waitUntilReady(server.url);
  });
  after(async () => {
    assert.equal(await server.stop("SIGTERM"), 0, "graceful stop exits 0");
  });

  it("accepts a bare array, stores every chunk with the seed payload, and finds them all", async () => {
    const accepted = await postJson<{ status: string; count: number; job_id: string }>(
      `${server.url}/test/embed`,
      chunks,
    );
    assert.equal(accepted.status, 202);
    assert.equal(accepted.body.status, "accepted");
    assert.equal(accepted.body.count, chunks.length);
    assert.match(accepted.body.job_id, /^[0-9a-f-]{36}$/);

    const job = await waitForJobDone(server.url, accepted.body.job_id);
    assert.deepEqual(job.counts, {
      total: 60,
      queued: 0,
      running: 0,
      stored: 60,
      unchanged: 0,
      superseded: 0,
      failed: 0,
      dead: 0,
      discarded: 0,
      cancelled: 0,
    });

    const search = await postJson<SearchBody>(`${server.url}/v1/collections/test/search`, {
      query: "take with water",
      top_k: 1000,
    });
    assert.equal(search.status, 200);
    assert.equal(search.body.hits.length, chunks.length, "one point per chunk");
    const byId = new Map(search.body.hits.map((hit) => [hit.id, hit]));
    for (const chunk of chunks) {
      const hit = byId.get(chunk.chunk_id);
      assert.ok(hit, `chunk ${chunk.chunk_id} is searchable`);
      assert.deepEqual(hit.payload, {
        docId: chunk.chunk_id,
        itemSequence: chunk.item_sequence,
        name: chunk.name,
        contents: chunk.contents,
        meta: chunk.meta,
      });
    }
    const scores = search.body.hits.map((h) => h.score);
    assert.deepEqual(
      scores,
      [...scores].sort((a, b) => b - a),
      "hits sorted by score",
    );
  });

  it("re-ingesting identical chunks (wrapped variant) embeds nothing and adds no point", async () => {
    const accepted = await postJson<{ job_id: string; count: number }>(`${server.url}/test/embed`, {
      chunks,
    });
    assert.equal(accepted.status, 202);
    const job: JobBody = await waitForJobDone(server.url, accepted.body.job_id);
    assert.equal(job.counts.unchanged, chunks.length, "every chunk recognised as unchanged");
    assert.equal(job.counts.stored, 0, "nothing embedded or rewritten");
    const search = await postJson<SearchBody>(`${server.url}/v1/collections/test/search`, {
      query: "anything",
      top_k: 1000,
    });
    assert.equal(search.body.hits.length, chunks.length, "still one point per chunk");
  });

  it("a changed chunk is re-embedded and replaces its point", async () => {
    const changed = { ...chunks[0]!, contents: "an entirely new text for this section" };
    const accepted = await postJson<{ job_id: string }>(`${server.url}/test/embed`, [changed]);
    const job = await waitForJobDone(server.url, accepted.body.job_id);
    assert.equal(job.counts.stored, 1);
    const search = await postJson<SearchBody>(`${server.url}/v1/collections/test/search`, {
      query: "x",
      top_k: 1000,
      filter: { docId: changed.chunk_id },
    });
    assert.equal(search.body.hits.length, 1);
    assert.equal(search.body.hits[0]?.payload.contents, changed.contents);
  });

  it("reports queue status and model info in the seed shapes", async () => {
    const status = await getJson(`${server.url}/test/status?threshold=0.5`);
    assert.equal(status.status, 200);
    assert.deepEqual(Object.keys(status.body).sort(), [
      "current_task_queue_size",
      "max_queue_size",
      "queue_available",
      "threshold_ratio",
    ]);
    assert.equal(status.body.current_task_queue_size, 0);
    assert.equal(status.body.threshold_ratio, 0.5);
    assert.equal(status.body.queue_available, true);

    const info = await getJson<{
      dimension: number;
      max_tokens: number;
      prefixes: object;
      model_name: string;
    }>(`${server.url}/model-info`);
    assert.equal(info.status, 200);
    assert.equal(info.body.dimension, 384);
    assert.equal(info.body.max_tokens, 256);
    assert.deepEqual(info.body.prefixes, { passage: "", query: "" });
  });

  it("deletes a document's chunks by item sequence", async () => {
    const itemSequence = chunks[5]!.item_sequence;
    const expected = chunks.filter((c) => c.item_sequence === itemSequence).length;
    const response = await fetch(`${server.url}/v1/collections/test/documents/${itemSequence}`, {
      method: "DELETE",
    });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { deleted: number; document_id: string; chunk_ids: string[] };
    assert.equal(body.deleted, expected);
    assert.equal(body.document_id, itemSequence);
    assert.equal(body.chunk_ids.length, expected);
    const search = await postJson<SearchBody>(`${server.url}/v1/collections/test/search`, {
      query: "x",
      top_k: 1000,
    });
    assert.equal(search.body.hits.length, chunks.length - expected);
    assert.ok(search.body.hits.every((h) => h.payload.itemSequence !== itemSequence));
  });
});
