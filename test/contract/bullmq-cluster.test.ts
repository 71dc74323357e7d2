import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before } from "node:test";
import { BullmqJobQueue } from "../../src/queue/bullmq/bullmq-job-queue.js";
import type { JobQueueOptions } from "../../src/queue/job-queue.js";
import { RedisTestCluster } from "../helpers/redis-cluster.js";
import { jobQueueContract } from "./job-queue.contract.js";

/**
 * The whole JobQueue contract on a real 3-node Redis Cluster. Each test gets its own prefix, so
 * its hash tag, and so (across the suite) slots on every node: BullMQ's scripts and ours must
 * declare every key and keep them in one slot, or the cluster refuses them with CROSSSLOT.
 */
let cluster: RedisTestCluster | undefined;
const STALL_CHECK_MS = 100;

before(async () => {
  cluster = await RedisTestCluster.start();
});

after(async () => {
  await cluster?.stop();
});

function clusterUrl(): string {
  assert.ok(cluster, "the Redis Cluster did not start");
  return `redis-cluster://${cluster.nodes.map((n) => `${n.host}:${n.port}`).join(",")}`;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

jobQueueContract("BullmqJobQueue on a 3-node Redis Cluster", async (options?: Partial<JobQueueOptions>) => {
  const queue = new BullmqJobQueue({
    url: clusterUrl(),
    prefix: `cluster-${randomUUID()}`,
    consume: true,
    stalledIntervalMs: STALL_CHECK_MS,
    ...options,
  });
  return {
    queue,
    clock: { advance: (ms: number) => sleep(ms + 3 * STALL_CHECK_MS) },
    cleanup: async () => {},
  };
});
