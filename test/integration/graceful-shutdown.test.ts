import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type JobBody, seedChunks, waitForJobDone } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/paths.js";
import { getJson, postJson, startServerProcess, waitFor } from "../helpers/server-process.js";

describe("graceful shutdown: SIGTERM mid-ingest", () => {
  it("refuses new work with 503, exits 0, and loses nothing", async () => {
    const env = { DATA_DIR: tempDir("sigterm"), RESERVE_MAX_CHUNKS: "64", SHUTDOWN_TIMEOUT_SECONDS: "10" };
    const first = await startServerProcess(env);
    const jobIds: string[] = [];
    for (let i = 0; i < 6; i++) {
      const accepted = await postJson<{ job_id: string }>(
        `${first.url}/test/embed`,
        seedChunks(100, `g${i}`),
      );
      jobIds.push(accepted.body.job_id);
    }
    await waitFor(
      async () => (await getJson<JobBody>(`${first.url}/v1/jobs/${jobIds[0]}`)).body.counts.stored > 0,
      { intervalMs: 20, what: "work in progress" },
    );
    first.child.kill("SIGTERM");
    await waitFor(async () => first.logs.some((entry) => String(entry.msg).startsWith("shutting down")), {
      intervalMs: 5,
      what: "shutdown to begin",
    });
    // While in-flight batches finish, the listener stays open and answers 503.
    const during = await fetch(`${first.url}/test/embed`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(seedChunks(1, "late")),
    }).then(
      async (response) => ({
        status: response.status,
        body: (await response.json()) as { error?: { code: string } },
      }),
      () => null,
    );
    assert.ok(during, "the listener stays open while in-flight batches finish");
    assert.equal(during.status, 503);
    assert.equal(during.body.error?.code, "shutting_down");
    assert.equal(await first.stop(), 0, "exit code 0");
    assert.ok(
      first.logs.some((entry) => entry.msg === "pipeline stopped"),
      "the pipeline stopped in order before exit",
    );

    const second = await startServerProcess(env);
    try {
      for (const id of jobIds) {
        const job = await waitForJobDone(second.url, id);
        assert.equal(job.counts.stored + job.counts.unchanged, 100, `job ${id} complete`);
      }
      const search = await postJson<{ hits: Array<{ id: string }> }>(
        `${second.url}/v1/collections/test/search`,
        {
          query: "x",
          top_k: 10_000,
        },
      );
      assert.equal(search.body.hits.length, 600);
      assert.ok(!search.body.hits.some((h) => h.id.startsWith("late")), "the refused request left nothing");
    } finally {
      await second.stop();
    }
  });
});
