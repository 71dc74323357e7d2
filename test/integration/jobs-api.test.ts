/**
 * Jobs are durable records: a server SIGKILLed mid-ingest lists its jobs again after a restart
 * (running first), and a job's queued chunks can be cancelled while the rest goes on.
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, describe, it } from "node:test";
import type { JobList } from "../../src/client/types.js";
import { waitForJobDone } from "../helpers/fixtures.js";
import { tempDir } from "../helpers/paths.js";
import {
  getJson,
  postJson,
  type ServerProcess,
  startServerProcess,
  waitFor,
} from "../helpers/server-process.js";

function chunks(prefix: string, count: number) {
  return Array.from({ length: count }, (_, i) => ({
    id: `${prefix}-${i}`,
    text: `text number ${i} of ${prefix}`,
  }));
}

describe("jobs API: durable job list, cancel", () => {
  const dataDir = tempDir("jobs-api");
  let server: ServerProcess | undefined;
  // Slow enough that the jobs are still in progress when the server is killed.
  const env = { DATA_DIR: dataDir, EMBEDDING_MAX_RATE: "20", RESERVE_MAX_CHUNKS: "8" };

  after(async () => {
    await server?.stop("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("lists the jobs after a SIGKILL and restart, work left first; DELETE cancels queued chunks", async () => {
    server = await startServerProcess(env);
    const first = await postJson<{ job_id: string }>(`${server.url}/v1/collections/docs/chunks`, {
      chunks: chunks("a", 200),
    });
    const second = await postJson<{ job_id: string }>(`${server.url}/v1/collections/other/chunks`, {
      chunks: chunks("b", 200),
    });
    assert.equal(first.status, 202);
    assert.equal(second.status, 202);
    await waitFor(
      async () => {
        const { body } = await getJson<{ counts: { stored: number } }>(
          `${server!.url}/v1/jobs/${first.body.job_id}`,
        );
        return body.counts.stored > 0 ? true : undefined;
      },
      { what: "some chunks stored" },
    );
    await server.stop("SIGKILL");

    server = await startServerProcess(env);
    const listed = await getJson<JobList>(`${server.url}/v1/jobs`);
    assert.equal(listed.status, 200);
    assert.deepEqual(
      listed.body.jobs.map((j) => j.id).sort(),
      [first.body.job_id, second.body.job_id].sort(),
      "both jobs survive the restart",
    );
    assert.ok(
      listed.body.jobs.every((j) => j.state !== "done"),
      "work is left in both",
    );
    const ofOther = await getJson<JobList>(`${server.url}/v1/jobs?collection=other`);
    assert.deepEqual(
      ofOther.body.jobs.map((j) => j.id),
      [second.body.job_id],
    );

    const cancel = await fetch(`${server.url}/v1/jobs/${second.body.job_id}`, { method: "DELETE" });
    const cancelled = (await cancel.json()) as { cancelled: number };
    assert.equal(cancel.status, 200);
    assert.ok(cancelled.cancelled > 0, `cancelled ${cancelled.cancelled}`);
    const unknown = await fetch(`${server.url}/v1/jobs/00000000-0000-4000-8000-000000000000`, {
      method: "DELETE",
    });
    assert.equal(unknown.status, 404);

    const done = await waitForJobDone(server.url, second.body.job_id);
    const receipts = await getJson<{ chunks: Array<{ state: string }> }>(
      `${server.url}/v1/jobs/${second.body.job_id}?state=cancelled&limit=1000`,
    );
    assert.equal(receipts.body.chunks.length, cancelled.cancelled, "receipts say cancelled");
    assert.equal((done.counts as Record<string, number>).cancelled, cancelled.cancelled);
    const finished = await waitForJobDone(server.url, first.body.job_id);
    assert.equal(finished.counts.stored + finished.counts.unchanged, 200, "the other job is untouched");
    const doneList = await getJson<JobList>(`${server.url}/v1/jobs?state=done`);
    assert.equal(doneList.body.jobs.length, 2);
  });
});
