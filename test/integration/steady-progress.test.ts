import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type JobBody, seedChunks, waitForJobDone } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/paths.js";
import { getJson, postJson, startServerProcess } from "../helpers/server-process.js";

interface SeedStatus {
  current_task_queue_size: number;
}
interface Status {
  throughput: { chunks_per_second: number };
  estimated_drain_seconds: number | null;
}

describe("steady progress: a reservation is stored slice by slice", () => {
  it("/test/status falls in several steps smaller than the reservation, and throughput shows before the job ends", async () => {
    const chunks = 400;
    const server = await startServerProcess({
      DATA_DIR: tempDir("progress"),
      // One reservation takes the whole job; slices of ~200 estimated tokens are a few chunks each.
      RESERVE_MAX_CHUNKS: String(chunks),
      MAX_PARALLEL_TASKS: "1",
      COMMIT_SLICE_TOKENS: "200",
    });
    try {
      const accepted = await postJson<{ job_id: string }>(
        `${server.url}/test/embed`,
        seedChunks(chunks, "s"),
      );
      assert.equal(accepted.status, 202);
      const sizes: number[] = [];
      let rateWhileWorking = 0;
      let drainWhileWorking: number | null = null;
      const deadline = Date.now() + 300_000;
      for (;;) {
        assert.ok(Date.now() < deadline, `the queue did not drain: ${sizes.join(" → ")}`);
        const { body } = await getJson<SeedStatus>(`${server.url}/test/status`);
        const size = body.current_task_queue_size;
        if (size !== sizes.at(-1)) sizes.push(size);
        if (size === 0) break;
        if (size < chunks) {
          const status = (await getJson<Status>(`${server.url}/v1/status`)).body;
          // Sampled after the reading of the queue size: work is still left, or just finished.
          rateWhileWorking = Math.max(rateWhileWorking, status.throughput.chunks_per_second);
          drainWhileWorking ??= status.estimated_drain_seconds;
        }
      }
      const job = await waitForJobDone(server.url, accepted.body.job_id);
      assert.equal((job as JobBody).counts.stored, chunks);
      const steps = sizes.slice(1).map((size, i) => (sizes[i] ?? 0) - size);
      assert.ok(
        sizes.length >= 4,
        `the queue size took several values on its way down: ${sizes.join(" → ")}`,
      );
      assert.ok(
        Math.max(...steps) < chunks,
        `no step is the whole reservation (${chunks}): ${sizes.join(" → ")}`,
      );
      assert.ok(rateWhileWorking > 0, "throughput is reported while the reservation is still being embedded");
      assert.notEqual(drainWhileWorking, null, "a drain estimate is there while work is left");
    } finally {
      await server.stop();
    }
  });
});
