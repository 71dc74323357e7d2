import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type JobBody, type SeedChunkFixture, waitForJobDone } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/paths.js";
import {
  freePort,
  getJson,
  postJson,
  type ServerProcess,
  startServerProcess,
} from "../helpers/server-process.js";

const CHUNKS = 5000;
const PER_REQUEST = 100;
const KILLS = 6;

function chunk(i: number): SeedChunkFixture {
  return {
    chunk_id: `chaos-${i}`,
    item_sequence: String(Math.floor(i / 10)),
    name: `Item ${i % 97}`,
    contents: `dose ${i} mg ${"with food ".repeat(i % 7)}`,
    meta: null,
  };
}

describe("chaos: SIGKILL the server repeatedly while 5,000 chunks are ingested", () => {
  it("ends with stored points = accepted chunks, no duplicates, every job complete", async () => {
    const port = await freePort();
    const env = { DATA_DIR: tempDir("chaos"), PORT: String(port), RESERVE_MAX_CHUNKS: "64" };
    const base = `http://127.0.0.1:${port}`;
    let server: ServerProcess = await startServerProcess(env);
    let sending = true;
    const jobIds: string[] = [];
    const accepted = new Set<string>();

    // A client that retries until each request is acknowledged, as a real one would. A request
    // whose answer is lost to a kill is sent again: the chunk ids are the same, so the store
    // must still end with one point per chunk.
    const sender = (async () => {
      for (let start = 0; start < CHUNKS; start += PER_REQUEST) {
        const body = Array.from({ length: PER_REQUEST }, (_, k) => chunk(start + k));
        for (;;) {
          try {
            const response = await postJson<{ job_id: string }>(`${base}/test/embed`, body);
            if (response.status === 202) {
              jobIds.push(response.body.job_id);
              for (const c of body) accepted.add(c.chunk_id);
              break;
            }
          } catch {
            // connection refused or reset while the server is down
          }
          await sleep(50);
        }
      }
      sending = false;
    })();

    let kills = 0;
    let killsWithWorkPending = 0;
    const random = mulberry32(Number(process.env.CHAOS_SEED ?? 20261125));
    while (kills < KILLS) {
      await sleep(300 + Math.floor(random() * 1200));
      const pending = await getJson<{ current_task_queue_size: number }>(`${base}/test/status`).catch(
        () => null,
      );
      if (pending && pending.body.current_task_queue_size > 0) killsWithWorkPending += 1;
      await server.stop("SIGKILL");
      kills += 1;
      server = await startServerProcess(env);
    }
    await sender;
    assert.equal(sending, false);
    assert.ok(
      killsWithWorkPending >= 5,
      `${killsWithWorkPending} of ${kills} kills hit the server with work pending`,
    );

    try {
      for (const jobId of jobIds) {
        const job: JobBody = await waitForJobDone(base, jobId, 240_000);
        assert.equal(job.counts.dead, 0, `job ${jobId}: ${JSON.stringify(job.failures.slice(0, 3))}`);
        assert.equal(job.counts.stored + job.counts.unchanged, job.counts.total, `job ${jobId} complete`);
      }
      const search = await postJson<{ hits: Array<{ id: string }> }>(`${base}/v1/collections/test/search`, {
        query: "dose",
        top_k: 10_000,
      });
      const ids = search.body.hits.map((h) => h.id);
      assert.equal(accepted.size, CHUNKS);
      assert.equal(ids.length, accepted.size, "stored points = accepted chunks");
      assert.equal(new Set(ids).size, ids.length, "no duplicate ids");
      const status = await getJson<{ current_task_queue_size: number }>(`${base}/test/status`);
      assert.equal(status.body.current_task_queue_size, 0);
    } finally {
      await server.stop();
    }
  });
});

/** Small seeded PRNG so a failing kill schedule can be replayed with CHAOS_SEED. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
