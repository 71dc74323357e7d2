import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import type { NewChunk } from "../../src/domain/types.js";
import { ThroughputMeter } from "../../src/observability/throughput-meter.js";
import { BullmqJobQueue, type BullmqJobQueueOptions } from "../../src/queue/bullmq/bullmq-job-queue.js";
import type { JobQueueOptions } from "../../src/queue/job-queue.js";
import { SharedThroughput } from "../../src/queue/redis/shared-throughput.js";
import { SingleHostGuard } from "../../src/queue/redis/single-host-guard.js";
import { RedisTestServer } from "../helpers/redis-server.js";
import { waitFor } from "../helpers/server-process.js";
import { type JobQueueFixture, jobQueueContract, MP, TRUNCATE } from "./job-queue.contract.js";

const LONG_MS = 600_000;
const ROOMY = 1_000_000;

let server: RedisTestServer | undefined;

before(async () => {
  server = await RedisTestServer.start();
});

after(async () => {
  await server?.stop();
});

function redisUrl(): string {
  assert.ok(server, "redis-server did not start");
  return server.url;
}

/** A fresh key prefix per queue, so tests sharing one redis-server never see each other's keys. */
function freshPrefix(): string {
  return `test-${randomUUID()}`;
}

/** BullMQ looks for stalled jobs this often here (production: a quarter of the lease). */
const STALL_CHECK_MS = 100;

function bullmq(options: Partial<BullmqJobQueueOptions> & { prefix: string }): BullmqJobQueue {
  return new BullmqJobQueue({
    url: redisUrl(),
    consume: true,
    stalledIntervalMs: STALL_CHECK_MS,
    ...options,
  });
}

function chunk(chunkId: string, estimatedTokens = 10): NewChunk {
  return {
    chunkId,
    text: `text of ${chunkId}`,
    documentId: null,
    payload: { chunkId },
    estimatedTokens,
    overflow: TRUNCATE,
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A TCP proxy in front of redis-server that can lose one reply: the command reaches Redis and runs,
 * then the client's connection is cut before the answer arrives. ioredis reconnects and sends the
 * command again, as it does after any network blip.
 */
async function replyDroppingProxy(
  port: number,
): Promise<{ url: string; dropNextReply(): void; close(): Promise<void> }> {
  let drop = false;
  const sockets = new Set<Socket>();
  const proxy: Server = createServer((client) => {
    const upstream = createConnection({ host: "127.0.0.1", port });
    sockets.add(client);
    sockets.add(upstream);
    client.on("data", (data) => upstream.write(data));
    upstream.on("data", (data) => {
      if (drop) {
        drop = false;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(data);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
  });
  proxy.listen(0, "127.0.0.1");
  await once(proxy, "listening");
  const address = proxy.address();
  assert.ok(address && typeof address === "object");
  return {
    url: `redis://127.0.0.1:${address.port}`,
    dropNextReply() {
      drop = true;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      proxy.close();
      await once(proxy, "close");
    },
  };
}

// BullMQ runs on real time (locks expire in Redis, stalled jobs are looked for every
// STALL_CHECK_MS), so advancing the clock means waiting: a lock that expires is noticed by the next
// stall check, and the check after it at the latest. Steps past a lease (the suite's SHORT_MS + 1)
// wait eight checks, not three: the checks are timers in this process, and on a loaded machine three
// were once not enough for an expired lock to be taken back. Shorter steps keep three, since the
// suite needs them to stay shorter than a lease (renew after half a lease).
const LEASE_STEP_MS = 1_000;
jobQueueContract("BullmqJobQueue", async (options?: Partial<JobQueueOptions>) => {
  const queue = bullmq({ prefix: freshPrefix(), ...options });
  const fixture: JobQueueFixture = {
    queue,
    clock: { advance: (ms: number) => sleep(ms + (ms > LEASE_STEP_MS ? 8 : 3) * STALL_CHECK_MS) },
    cleanup: async () => {},
  };
  return fixture;
});

describe("BullmqJobQueue across processes", () => {
  it("two instances see the same counts and never reserve the same chunk", async () => {
    const prefix = freshPrefix();
    const a = bullmq({ prefix });
    const b = bullmq({ prefix });
    try {
      const total = 300;
      for (let i = 0; i < total; i += 30) {
        const from = i % 60 === 0 ? a : b;
        const result = await from.enqueue({
          collection: "docs",
          chunks: Array.from({ length: 30 }, (_, j) => chunk(`c${i + j}`)),
          maxQueueSize: ROOMY,
        });
        assert.ok(result.accepted);
      }
      assert.deepEqual(await a.stats(), await b.stats());
      assert.deepEqual(await a.stats(), { pending: total, running: 0, dead: 0, pendingTokens: total * 10 });

      const seen = new Map<number, string>();
      const drain = async (queue: BullmqJobQueue, name: string) => {
        for (;;) {
          const lease = await queue.reserve({ maxChunks: 7, maxTokens: ROOMY, leaseMs: LONG_MS });
          if (lease === null) return;
          for (const c of lease.chunks) {
            assert.equal(seen.get(c.seq), undefined, `seq ${c.seq} reserved twice`);
            seen.set(c.seq, name);
          }
          await queue.ack(
            lease.id,
            lease.chunks.map((c) => ({ seq: c.seq, state: "unchanged" as const, ...MP })),
          );
        }
      };
      await Promise.all([drain(a, "a"), drain(b, "b"), drain(a, "a2"), drain(b, "b2")]);
      assert.equal(seen.size, total);
      const names = new Set(seen.values());
      assert.ok(names.size > 1, "both instances took work");
      assert.deepEqual(await a.stats(), { pending: 0, running: 0, dead: 0, pendingTokens: 0 });
      assert.deepEqual(await b.stats(), await a.stats());
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("a command re-sent after a lost reply: enqueue applies once, a re-sent fetch's chunk comes back", async () => {
    assert.ok(server);
    const proxy = await replyDroppingProxy(server.port);
    const prefix = freshPrefix();
    const flaky = bullmq({ url: proxy.url, prefix, lockDurationMs: 1_000 });
    const direct = bullmq({ prefix });
    try {
      await flaky.stats(); // connected
      proxy.dropNextReply();
      const accepted = await flaky.enqueue({
        collection: "docs",
        chunks: [chunk("a"), chunk("b"), chunk("c")],
        maxQueueSize: ROOMY,
      });
      assert.ok(accepted.accepted);
      assert.deepEqual(await direct.stats(), { pending: 3, running: 0, dead: 0, pendingTokens: 30 });
      assert.equal(
        (await direct.getJob(accepted.jobId))?.counts.queued,
        3,
        "the re-sent admission counted once",
      );

      // A fetch whose reply is lost took a chunk nobody knows about: its lock lapses and BullMQ's
      // stall check hands it back. Nothing is lost; it costs one lease of delay.
      proxy.dropNextReply();
      const lease = await flaky.reserve({ maxChunks: 3, maxTokens: ROOMY, leaseMs: 1_000 });
      assert.ok(lease);
      const seen = new Set(lease.chunks.map((c) => c.chunkId));
      await flaky.ack(
        lease.id,
        lease.chunks.map((c) => ({ seq: c.seq, state: "unchanged" as const, ...MP })),
      );
      await waitFor(
        async () => {
          const next = await direct.reserve({ maxChunks: 10, maxTokens: ROOMY, leaseMs: LONG_MS });
          if (next) {
            for (const c of next.chunks) seen.add(c.chunkId);
            await direct.ack(
              next.id,
              next.chunks.map((c) => ({ seq: c.seq, state: "unchanged" as const, ...MP })),
            );
          }
          return seen.size === 3;
        },
        { timeoutMs: 10_000, what: "the lost fetch's chunk to come back" },
      );
      assert.deepEqual([...seen].sort(), ["a", "b", "c"]);
      assert.equal((await direct.getJob(accepted.jobId))?.state, "done");
    } finally {
      await flaky.close();
      await direct.close();
      await proxy.close();
    }
  });

  it("concurrent enqueues from two instances accept exactly the capacity, whole requests only", async () => {
    const prefix = freshPrefix();
    const a = bullmq({ prefix });
    const b = bullmq({ prefix });
    try {
      const capacity = 50;
      // 40 requests of 5 chunks race for room for 10 of them.
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          (i % 2 === 0 ? a : b).enqueue({
            collection: "docs",
            chunks: Array.from({ length: 5 }, (_, j) => chunk(`r${i}-${j}`)),
            maxQueueSize: capacity,
          }),
        ),
      );
      const accepted = results.filter((r) => r.accepted);
      assert.equal(accepted.length, 10);
      assert.equal(
        accepted.reduce((sum, r) => sum + (r.accepted ? r.count : 0), 0),
        capacity,
      );
      for (const r of results) if (!r.accepted) assert.equal(r.pending, capacity);
      assert.equal((await a.stats()).pending, capacity);
      assert.equal((await b.stats()).pending, capacity);

      // Single-chunk requests against the remaining room of another prefix's queue: exactly capacity.
      const prefix2 = freshPrefix();
      const c = bullmq({ prefix: prefix2 });
      const d = bullmq({ prefix: prefix2 });
      try {
        const singles = await Promise.all(
          Array.from({ length: 120 }, (_, i) =>
            (i % 2 === 0 ? c : d).enqueue({ collection: "docs", chunks: [chunk(`s${i}`)], maxQueueSize: 37 }),
          ),
        );
        assert.equal(singles.filter((r) => r.accepted).length, 37);
        assert.equal((await d.stats()).pending, 37);
        assert.equal((await a.stats()).pending, capacity, "prefixes are isolated");
      } finally {
        await c.close();
        await d.close();
      }
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("a redis-server SIGKILLed and restarted on its AOF keeps every accepted chunk and count", async () => {
    assert.ok(server);
    const prefix = freshPrefix();
    const queue = bullmq({ prefix });
    const jobIds: string[] = [];
    let accepted = 0;
    try {
      for (let i = 0; i < 40; i++) {
        const result = await queue.enqueue({
          collection: "docs",
          chunks: Array.from({ length: 25 }, (_, j) => chunk(`k${i}-${j}`)),
          maxQueueSize: ROOMY,
        });
        assert.ok(result.accepted);
        jobIds.push(result.jobId);
        accepted += result.count;
      }
      const lease = await queue.reserve({ maxChunks: 30, maxTokens: ROOMY, leaseMs: LONG_MS });
      assert.ok(lease);
      await queue.ack(
        lease.id,
        lease.chunks.slice(0, 10).map((c) => ({ seq: c.seq, state: "unchanged" as const, ...MP })),
      );
      const statsBefore = await queue.stats();
      const jobsBefore = await Promise.all(jobIds.map((id) => queue.getJob(id)));

      await server.restart("SIGKILL");

      const fresh = bullmq({ prefix });
      try {
        assert.deepEqual(await fresh.stats(), statsBefore);
        assert.deepEqual(await Promise.all(jobIds.map((id) => fresh.getJob(id))), jobsBefore);
        let receipts = 0;
        for (const id of jobIds) receipts += (await fresh.listChunks(id, { limit: 1000 })).items.length;
        assert.equal(receipts, accepted, "every accepted chunk survived");
        // The lease survived too: the rest of it can still be acked (the old client reconnects).
        await queue.ack(
          lease.id,
          lease.chunks.slice(10).map((c) => ({ seq: c.seq, state: "unchanged" as const, ...MP })),
        );
        let drained = 0;
        for (;;) {
          const next = await fresh.reserve({ maxChunks: 100, maxTokens: ROOMY, leaseMs: LONG_MS });
          if (next === null) break;
          drained += next.chunks.length;
          await fresh.ack(
            next.id,
            next.chunks.map((c) => ({ seq: c.seq, state: "unchanged" as const, ...MP })),
          );
        }
        assert.equal(drained, accepted - lease.chunks.length);
        assert.deepEqual(await fresh.stats(), { pending: 0, running: 0, dead: 0, pendingTokens: 0 });
      } finally {
        await fresh.close();
      }
    } finally {
      await queue.close();
    }
  });
});

describe("BullmqJobQueue admissions that do not finish", () => {
  /** Replaces the BullMQ queue's addBulk of `queue` (internals: this is an adapter test). */
  function breakAddBulk(queue: BullmqJobQueue, addBulk: () => Promise<unknown>): void {
    (queue as unknown as { queue: { addBulk: () => Promise<unknown> } }).queue.addBulk = addBulk;
  }

  it("a failed addBulk gives its capacity back at once and never shows as pending", async () => {
    const prefix = freshPrefix();
    const broken = bullmq({ prefix });
    const healthy = bullmq({ prefix });
    try {
      breakAddBulk(broken, async () => {
        throw new Error("connection lost");
      });
      await assert.rejects(
        broken.enqueue({ collection: "docs", chunks: [chunk("a"), chunk("b")], maxQueueSize: 2 }),
        /connection lost/,
      );
      assert.deepEqual(await healthy.stats(), { pending: 0, running: 0, dead: 0, pendingTokens: 0 });
      const next = await healthy.enqueue({
        collection: "docs",
        chunks: [chunk("c"), chunk("d")],
        maxQueueSize: 2,
      });
      assert.equal(next.accepted, true, "the capacity came back");
    } finally {
      await broken.close();
      await healthy.close();
    }
  });

  it("an admission whose process died mid-way holds capacity, is never pending, and is rolled back", async () => {
    const prefix = freshPrefix();
    const dying = bullmq({ prefix });
    const housekeeper = bullmq({ prefix, abandonedAdmissionMs: 300 });
    try {
      breakAddBulk(dying, () => new Promise(() => {})); // hangs: the process "died" here
      void dying.enqueue({ collection: "docs", chunks: [chunk("a"), chunk("b")], maxQueueSize: 3 });
      await sleep(100);
      assert.equal((await housekeeper.stats()).pending, 0, "an unconfirmed admission is not in the queue");
      const squeezed = await housekeeper.enqueue({
        collection: "docs",
        chunks: [chunk("c"), chunk("d")],
        maxQueueSize: 3,
      });
      assert.equal(squeezed.accepted, false, "but it holds its capacity");
      await sleep(400);
      await housekeeper.maintain();
      const after = await housekeeper.enqueue({
        collection: "docs",
        chunks: [chunk("c"), chunk("d")],
        maxQueueSize: 3,
      });
      assert.equal(after.accepted, true, "rolled back: the capacity is free");
      assert.equal((await housekeeper.stats()).pending, 2);
    } finally {
      await dying.close();
      await housekeeper.close();
    }
  });
  it("an admission whose jobs were added but never confirmed: worked on meanwhile, counts never go below zero, then confirmed", async () => {
    const prefix = freshPrefix();
    const dying = bullmq({ prefix });
    const housekeeper = bullmq({ prefix, abandonedAdmissionMs: 300 });
    try {
      // The process "died" after adding the BullMQ jobs, before confirming the admission.
      const internals = dying as unknown as { call: (name: string, ...args: unknown[]) => Promise<unknown> };
      const call = internals.call.bind(dying);
      internals.call = (name, ...args) =>
        name === "ragConfirm" ? new Promise(() => {}) : call(name, ...args);
      void dying.enqueue({
        collection: "docs",
        chunks: [chunk("a"), chunk("b"), chunk("c")],
        maxQueueSize: 5,
      });
      const lease = await waitFor(
        () =>
          housekeeper
            .reserve({ maxChunks: 2, maxTokens: ROOMY, leaseMs: LONG_MS })
            .then((l) => l ?? undefined),
        { timeoutMs: 5_000, intervalMs: 20, what: "the added chunks to be reservable" },
      );
      const { jobId } = lease.chunks[0] ?? {};
      assert.ok(jobId);
      await housekeeper.ack(
        lease.id,
        lease.chunks.map((c) => ({
          seq: c.seq,
          state: "stored" as const,
          tokens: 3,
          truncatedTokens: 0,
          windows: 1,
          ...MP,
        })),
      );
      const during = await housekeeper.stats();
      assert.equal(
        during.pending,
        0,
        "unconfirmed chunks are not pending, and stored ones do not go below zero",
      );
      assert.ok(during.pendingTokens >= 0, `pending tokens ${during.pendingTokens}`);

      await sleep(400);
      await housekeeper.maintain();
      const job = await housekeeper.getJob(jobId);
      assert.ok(job, "confirmed, not rolled back: the job and its receipts stay");
      assert.equal(job.counts.stored, 2);
      assert.equal(job.counts.queued, 1);
      const after = await housekeeper.stats();
      assert.equal(after.pending, 1, "the one chunk still queued is pending now");
      assert.equal(after.pendingTokens, chunk("c").estimatedTokens);
      // The capacity of the two stored chunks is free again: 5 − 1 pending leaves room for 4.
      const more = await housekeeper.enqueue({
        collection: "docs",
        chunks: ["d", "e", "f", "g"].map((id) => chunk(id)),
        maxQueueSize: 5,
      });
      assert.equal(more.accepted, true, JSON.stringify(more));
    } finally {
      await dying.close();
      await housekeeper.close();
    }
  });
});

describe("BullmqJobQueue memory", () => {
  it("after the chunks are stored and retention passed, Redis holds no data of them", async () => {
    const prefix = freshPrefix();
    const queue = bullmq({ prefix, jobRetentionMs: 3000 });
    const redis = new Redis(redisUrl());
    const keysOf = async () => {
      const found: string[] = [];
      let cursor = "0";
      do {
        const [next, keys] = await redis.scan(cursor, "MATCH", `{${prefix}}*`, "COUNT", 1000);
        cursor = next;
        found.push(...keys);
      } while (cursor !== "0");
      return found.sort();
    };
    try {
      const text = "가".repeat(500); // 1.5 KB of UTF-8, like a Korean leaflet section
      const jobIds: string[] = [];
      for (let r = 0; r < 4; r++) {
        const result = await queue.enqueue({
          collection: "docs",
          chunks: Array.from({ length: 50 }, (_, i) => ({ ...chunk(`m${r}-${i}`), text })),
          maxQueueSize: ROOMY,
        });
        assert.ok(result.accepted);
        jobIds.push(result.jobId);
      }
      const queued = await keysOf();
      assert.ok(
        queued.some((k) => k.includes(jobIds[0]!)),
        "queued chunks live in Redis",
      );
      for (;;) {
        const lease = await queue.reserve({ maxChunks: 64, maxTokens: ROOMY, leaseMs: LONG_MS });
        if (!lease) break;
        await queue.ack(
          lease.id,
          lease.chunks.map((c) => ({
            seq: c.seq,
            state: "stored" as const,
            tokens: 500,
            truncatedTokens: 0,
            windows: 1,
            ...MP,
          })),
        );
      }
      const stored = await keysOf();
      assert.equal(
        stored.filter((k) => k.includes(":chunks:") && k.includes(jobIds[0]!)).length,
        0,
        "no BullMQ job is left once stored",
      );
      assert.equal((await queue.getJob(jobIds[3]!))?.counts.stored, 50, "receipts stay until retention");
      await sleep(3500);
      await queue.maintain();
      const after = await keysOf();
      assert.deepEqual(
        after.filter((k) => jobIds.some((id) => k.includes(id))),
        [],
        "nothing of the jobs is left",
      );
      for (const id of jobIds) assert.equal(await queue.getJob(id), null);
      assert.equal(await redis.zcard(`{${prefix}}:q:jobs`), 0, "the job index is pruned");
      // What is left is the queue's own few keys, whatever the number of chunks ever stored.
      assert.ok(after.length <= 10, `left: ${after.join(", ")}`);
    } finally {
      redis.disconnect();
      await queue.close();
    }
  });
});

describe("SharedThroughput (deployment-wide drain rate in one Redis hash)", () => {
  it("sums fresh workers, drops stale and departed ones", async () => {
    const prefix = freshPrefix();
    const t = 1_000_000;
    const meterA = new ThroughputMeter(30_000, () => t);
    const meterB = new ThroughputMeter(30_000, () => t);
    meterA.record(100, 1_000, t - 10_000); // 10 chunks/s
    meterB.record(50, 500, t - 10_000); // 5 chunks/s
    const a = new SharedThroughput(redisUrl(), prefix, meterA, true, "worker-a");
    const b = new SharedThroughput(redisUrl(), prefix, meterB, true, "worker-b");
    const api = new SharedThroughput(redisUrl(), prefix, new ThroughputMeter(), false);
    const raw = new Redis(redisUrl());
    try {
      // A worker that died long ago, as its last publication left it.
      await raw.hset(
        `{${prefix}}:throughput`,
        "gone:1",
        JSON.stringify({ chunksPerSecond: 99, tokensPerSecond: 9, at: 1 }),
      );
      await waitFor(async () => (api.rates().chunksPerSecond === 15 ? true : undefined), {
        what: "the API instance sees both workers",
        timeoutMs: 10_000,
      });
      assert.equal(api.rates().tokensPerSecond, 150);
      assert.equal(await raw.hexists(`{${prefix}}:throughput`, "gone:1"), 0, "the stale field was removed");
      await a.close();
      await waitFor(async () => (api.rates().chunksPerSecond === 5 ? true : undefined), {
        what: "a departed worker drops out",
        timeoutMs: 10_000,
      });
    } finally {
      await a.close();
      await b.close();
      await api.close();
      raw.disconnect();
    }
  });
});

describe("SingleHostGuard (the SQLite store is shared by one host only)", () => {
  it("lets processes of one host share it, refuses a second host, even when both start at once", async () => {
    const prefix = freshPrefix();
    const first = new SingleHostGuard(redisUrl(), prefix, "host-a");
    const sameHost = new SingleHostGuard(redisUrl(), prefix, "host-a");
    const otherHost = new SingleHostGuard(redisUrl(), prefix, "host-b");
    try {
      await first.claim();
      await sameHost.claim();
      await assert.rejects(otherHost.claim(), /host-a/);
    } finally {
      await first.release();
      await sameHost.release();
    }

    const racePrefix = freshPrefix();
    const racers = ["host-1", "host-2", "host-3", "host-4"].map(
      (h) => new SingleHostGuard(redisUrl(), racePrefix, h),
    );
    const outcomes = await Promise.allSettled(racers.map((g) => g.claim()));
    assert.equal(outcomes.filter((o) => o.status === "fulfilled").length, 1, "exactly one host wins");
    await Promise.all(racers.map((g) => g.release()));
  });
});
