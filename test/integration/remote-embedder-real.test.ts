import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { pointId } from "../../src/domain/ids.js";
import type { VectorRecord } from "../../src/domain/types.js";
import { WorkerEmbedder } from "../../src/embedder/worker-embedder.js";
import type { HttpServer } from "../../src/main.js";
import { capturingStore } from "../helpers/fake-embedding-engine.js";
import { waitForJobDone } from "../helpers/fixtures.js";
import { startInProcess } from "../helpers/in-process-server.js";
import { REPO_ROOT, realModelDir, tempDir } from "../helpers/paths.js";
import { getJson, postJson, type ServerProcess, startServerProcess } from "../helpers/server-process.js";

const DOCS = 200;
const COLLECTION = "scifact";

/** The first SciFact documents, text = (title + " " + text).trim() as BEIR has it. */
function scifact(count: number): Array<{ id: string; text: string }> {
  return readFileSync(resolve(REPO_ROOT, "../shared/datasets/scifact/corpus.jsonl"), "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .slice(0, count)
    .map((line) => {
      const row = JSON.parse(line) as { _id: string; title: string; text: string };
      return { id: String(row._id), text: `${row.title} ${row.text}`.trim() };
    });
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na * nb);
}

describe("this server as the remote engine of another: the stored vectors are the local model's", () => {
  let engine: ServerProcess;
  let server: HttpServer;
  const written = new Map<string, VectorRecord>();

  before(async () => {
    // The engine: `rag-embed serve` with the real all-MiniLM-L6-v2, answering POST /v1/embeddings.
    // One text per forward pass, here and in the local comparison: the int8 model quantizes
    // activations per batch, so a text's vector depends on its batch mates (batches of 8 against
    // texts alone: cosine 0.993–0.995 on this corpus, for the local model itself). Alone, both sides
    // compute exactly the same thing, and any difference is the remote path's.
    engine = await startServerProcess({
      EMBEDDING_MODEL: realModelDir(),
      EMBEDDING_THREADS: "2",
      BATCH_MAX_SIZE: "1",
    });
    server = await startInProcess(
      {
        EMBEDDER: "remote",
        EMBEDDER_URL: `${engine.url}/v1`,
        EMBEDDER_MODEL: "all-MiniLM-L6-v2",
        // The model directory doubles as the tokenizer (only tokenizer.json and its config are read).
        EMBEDDING_MODEL: realModelDir(),
      },
      { decorateStore: (inner) => capturingStore(inner, written) },
    );
  });
  after(async () => {
    await server?.shutdown(5000);
    await engine?.stop();
  });

  it(`ingests ${DOCS} SciFact documents through the engine; every point's vector has cosine >= 0.999 with the local embedding`, async (t) => {
    const docs = scifact(DOCS);
    const jobs: string[] = [];
    for (const slice of [docs.slice(0, DOCS / 2), docs.slice(DOCS / 2)]) {
      const accepted = await postJson<{ job_id: string }>(
        `${server.url}/v1/collections/${COLLECTION}/chunks`,
        {
          chunks: slice,
        },
      );
      assert.equal(accepted.status, 202);
      jobs.push(accepted.body.job_id);
    }
    for (const id of jobs) {
      const job = await waitForJobDone(server.url, id, 300_000);
      assert.equal(job.counts.stored, DOCS / 2, JSON.stringify(job.failures));
    }
    const receipts = await getJson<{ chunks: Array<{ model: string; split: boolean }> }>(
      `${server.url}/v1/jobs/${jobs[0]}?limit=1000`,
    );
    const host = new URL(engine.url).host;
    assert.ok(receipts.body.chunks.every((c) => c.model === `remote:openai:all-MiniLM-L6-v2@${host}`));
    assert.ok(
      receipts.body.chunks.some((c) => c.split),
      "some documents are over 256 tokens and were split",
    );

    // The same texts embedded here, by the local adapter, with the same overflow policy (split, 32 overlap).
    const local = new WorkerEmbedder({
      model: realModelDir(),
      dtype: "q8",
      threads: 2,
      sessions: 2,
      maxBatchTokens: 2048,
      maxBatchSize: 1,
      cacheDir: tempDir("models"),
      profileOverrides: {},
    });
    try {
      const expected = await local.embed(
        docs.map((d) => d.text),
        "passage",
        docs.map(() => ({ policy: "split" as const, overlapTokens: 32 })),
      );
      let compared = 0;
      let worst = 1;
      docs.forEach((doc, i) => {
        const windows = expected.windows[i];
        const points = windows
          ? [...written.values()]
              .filter((r) => r.parentChunkId === doc.id)
              .sort((a, b) => Number(a.payload.window_index) - Number(b.payload.window_index))
          : [written.get(pointId(COLLECTION, doc.id))!];
        assert.equal(
          points.length,
          windows?.length ?? 1,
          `${doc.id}: the same windows as the local model cuts`,
        );
        points.forEach((point, k) => {
          const window = windows?.[k];
          if (window)
            assert.equal(point.payload.window_text, window.text, `${doc.id}#${k}: the same window text`);
          const similarity = cosine(point.vector, window?.vector ?? expected.vectors[i]!);
          worst = Math.min(worst, similarity);
          compared += 1;
        });
      });
      assert.equal(compared, written.size, "every stored point compared");
      assert.ok(worst >= 0.999, `lowest cosine ${worst}`);
      t.diagnostic(`${compared} points compared, lowest cosine ${worst.toFixed(6)}`);
    } finally {
      await local.close();
    }
  });
});
