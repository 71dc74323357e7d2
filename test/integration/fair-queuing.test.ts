/**
 * No starvation by construction: a small job of one collection finishes while another
 * collection's 20,000-chunk backlog is still queued, on both queues (SQLite embedded; BullMQ on a
 * real redis-server). The drain is slowed with EMBEDDING_MAX_RATE so the backlog cannot finish
 * first on a fast machine.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { HttpServer } from "../../src/main.js";
import { waitForJobDone } from "../helpers/fixtures.js";
import { startInProcess } from "../helpers/in-process-server.js";
import { RedisTestServer } from "../helpers/redis-server.js";
import { getJson, postJson } from "../helpers/server-process.js";

const BACKLOG = 20_000;
const PER_REQUEST = 10_000;

function chunks(prefix: string, count: number) {
  return Array.from({ length: count }, (_, i) => ({ id: `${prefix}-${i}`, text: `short text ${i}` }));
}

async function backlogThenFreshJob(server: HttpServer): Promise<void> {
  for (let start = 0; start < BACKLOG; start += PER_REQUEST) {
    const { status } = await postJson(`${server.url}/v1/collections/backlog/chunks`, {
      chunks: chunks(`b${start}`, PER_REQUEST),
    });
    assert.equal(status, 202);
  }
  const fresh = await postJson<{ job_id: string }>(`${server.url}/v1/collections/fresh/chunks`, {
    chunks: chunks("f", 5),
  });
  assert.equal(fresh.status, 202);
  const done = await waitForJobDone(server.url, fresh.body.job_id, 120_000);
  assert.equal(done.counts.stored, 5);
  const { body } = await getJson<{ current_task_queue_size: number }>(`${server.url}/test/status`);
  assert.ok(
    body.current_task_queue_size > BACKLOG / 2,
    `the fresh job finished while ${body.current_task_queue_size} of the backlog's ${BACKLOG} chunks wait`,
  );
}

const SLOW = {
  EMBEDDING_MAX_RATE: "100",
  RESERVE_MAX_CHUNKS: "32",
  MAX_QUEUE_SIZE: "50000",
};

describe("fair queuing: a fresh job is not starved by another collection's backlog", () => {
  let redis: RedisTestServer | undefined;

  before(async () => {
    redis = await RedisTestServer.start();
  });

  after(async () => {
    await redis?.stop();
  });

  it("embedded SQLite queue", async () => {
    const server = await startInProcess(SLOW);
    try {
      await backlogThenFreshJob(server);
    } finally {
      await server.shutdown(0);
    }
  });

  it("BullMQ on Redis", async () => {
    assert.ok(redis);
    const server = await startInProcess({
      ...SLOW,
      QUEUE_URL: redis.url,
      QUEUE_PREFIX: `fair-${randomUUID()}`,
    });
    try {
      await backlogThenFreshJob(server);
    } finally {
      await server.shutdown(0);
    }
  });
});
