import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type JobBody, seedChunks, waitForJobDone } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/paths.js";
import { getJson, postJson, startServerProcess, waitFor } from "../helpers/server-process.js";

interface SearchBody {
  hits: Array<{ id: string }>;
}

describe("crash safety: SIGKILL mid-work, restart on the same DATA_DIR", () => {
  it("stores every accepted chunk exactly once", async () => {
    const dataDir = tempDir("crash");
    const env = { DATA_DIR: dataDir, RESERVE_MAX_CHUNKS: "16", BATCH_MAX_SIZE: "8" };
    const first = await startServerProcess(env);
    const chunks = seedChunks(400, "crash");
    const jobIds: string[] = [];
    for (let start = 0; start < chunks.length; start += 50) {
      const accepted = await postJson<{ job_id: string }>(
        `${first.url}/test/embed`,
        chunks.slice(start, start + 50),
      );
      assert.equal(accepted.status, 202);
      jobIds.push(accepted.body.job_id);
    }
    // Kill it once some work is stored and some is not: the interesting moment.
    await waitFor(
      async () => {
        const { body } = await getJson<JobBody>(`${first.url}/v1/jobs/${jobIds[0]}`);
        return body.counts.stored > 0;
      },
      { intervalMs: 20, what: "first stored chunks" },
    );
    const before = await getJson<{ current_task_queue_size: number }>(`${first.url}/test/status`);
    assert.ok(before.body.current_task_queue_size > 0, "work remained when the server was killed");
    await first.stop("SIGKILL");

    const second = await startServerProcess(env);
    try {
      for (const jobId of jobIds) {
        const job = await waitForJobDone(second.url, jobId);
        assert.equal(job.counts.dead, 0, `job ${jobId} has no failures`);
        assert.equal(job.counts.stored + job.counts.unchanged, job.counts.total, `job ${jobId} complete`);
      }
      const search = await postJson<SearchBody>(`${second.url}/v1/collections/test/search`, {
        query: "water",
        top_k: 10_000,
      });
      const ids = search.body.hits.map((hit) => hit.id);
      assert.equal(ids.length, chunks.length, "stored points = accepted chunks");
      assert.equal(new Set(ids).size, ids.length, "no duplicate ids");
      assert.deepEqual(new Set(ids), new Set(chunks.map((c) => c.chunk_id)));
    } finally {
      await second.stop();
    }
  });
});
