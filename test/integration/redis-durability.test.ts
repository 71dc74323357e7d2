/**
 * checkRedisDurability against real redis-server processes configured the ways production Redis
 * goes wrong: an evicting policy, no AOF, a lax fsync, CONFIG disabled (managed Redis), and a
 * Cluster with one node unlike the others.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Cluster, Redis } from "ioredis";
import { checkRedisDurability, type RedisDurabilityReport } from "../../src/queue/redis/redis-durability.js";
import { RedisTestCluster } from "../helpers/redis-cluster.js";
import { RedisTestServer } from "../helpers/redis-server.js";

const servers: RedisTestServer[] = [];

/** The report for a redis-server started with the test defaults (AOF, always) plus `extraArgs`. */
async function reportFor(extraArgs: string[]): Promise<RedisDurabilityReport> {
  const server = await RedisTestServer.start(extraArgs);
  servers.push(server);
  // No ready check: ioredis sends INFO on connect, which one case renames away.
  const client = new Redis(server.url, { maxRetriesPerRequest: 1, enableReadyCheck: false });
  try {
    return await checkRedisDurability(client);
  } finally {
    client.disconnect();
  }
}

after(async () => {
  await Promise.all(servers.map((server) => server.stop()));
});

describe("Redis durability check", () => {
  it("passes a Redis with noeviction, appendonly yes and appendfsync always", async () => {
    const report = await reportFor([]);
    assert.equal(report.verified, true);
    assert.equal(report.severity, "ok");
    assert.deepEqual(report.problems, []);
    assert.equal(report.source, "config");
    assert.equal(report.maxmemoryPolicy, "noeviction");
    assert.equal(report.appendonly, "yes");
    assert.equal(report.appendfsync, "always");
  });

  it("flags an evicting maxmemory-policy as an error", async () => {
    const report = await reportFor(["--maxmemory-policy", "allkeys-lru"]);
    assert.equal(report.verified, true);
    assert.equal(report.severity, "error");
    assert.equal(report.maxmemoryPolicy, "allkeys-lru");
    assert.equal(report.problems.length, 1);
    assert.match(report.problems[0]!, /maxmemory-policy is allkeys-lru.*evict.*noeviction/);
  });

  it("flags appendonly no as an error (and does not nag about appendfsync then)", async () => {
    const report = await reportFor(["--appendonly", "no"]);
    assert.equal(report.verified, true);
    assert.equal(report.severity, "error");
    assert.equal(report.appendonly, "no");
    assert.equal(report.problems.length, 1);
    assert.match(report.problems[0]!, /appendonly is no.*restart loses.*appendonly yes/);
  });

  it("flags appendfsync everysec as a warning: up to a second of accepted chunks", async () => {
    const report = await reportFor(["--appendfsync", "everysec"]);
    assert.equal(report.verified, true);
    assert.equal(report.severity, "warning");
    assert.equal(report.appendfsync, "everysec");
    assert.equal(report.problems.length, 1);
    assert.match(report.problems[0]!, /appendfsync is everysec.*up to a second/);
  });

  it("with CONFIG disabled, falls back to INFO, says so, and is not verified", async () => {
    const report = await reportFor(["--rename-command", "CONFIG", ""]);
    assert.equal(report.source, "info");
    assert.equal(report.verified, false);
    assert.equal(report.severity, "warning");
    assert.equal(report.maxmemoryPolicy, "noeviction");
    assert.equal(report.appendonly, "yes");
    assert.equal(report.appendfsync, null);
    assert.equal(report.problems.length, 1);
    assert.match(report.problems[0]!, /appendfsync unverified.*INFO.*CONFIG was refused.*unknown command/i);
  });

  it("through INFO still catches an evicting policy and a missing AOF", async () => {
    const report = await reportFor([
      "--rename-command",
      "CONFIG",
      "",
      "--maxmemory-policy",
      "volatile-lru",
      "--appendonly",
      "no",
    ]);
    assert.equal(report.source, "info");
    assert.equal(report.severity, "error");
    assert.equal(report.maxmemoryPolicy, "volatile-lru");
    assert.equal(report.appendonly, "no");
    assert.equal(report.problems.length, 2);
  });

  it("with CONFIG and INFO both refused: unverified, and a problem says so", async () => {
    const report = await reportFor(["--rename-command", "CONFIG", "", "--rename-command", "INFO", ""]);
    assert.equal(report.source, "none");
    assert.equal(report.verified, false);
    assert.notEqual(report.severity, "ok");
    assert.equal(report.maxmemoryPolicy, null);
    assert.equal(report.problems.length, 1);
    assert.match(report.problems[0]!, /durability unverified.*CONFIG GET.*INFO/);
  });
});

describe("Redis durability check on a Cluster", () => {
  it("checks every node and names the one that differs", async () => {
    const cluster = await RedisTestCluster.start();
    const client = new Cluster(cluster.startupNodes, { redisOptions: { maxRetriesPerRequest: 1 } });
    try {
      await new Promise<void>((resolve, reject) => {
        client.once("ready", resolve);
        client.once("error", reject);
      });
      const good = await checkRedisDurability(client);
      assert.equal(good.verified, true);
      assert.equal(good.severity, "ok");
      assert.equal(good.nodes?.length, 3);
      assert.equal(good.maxmemoryPolicy, "noeviction");

      const odd = cluster.nodes[1]!;
      const direct = new Redis({ host: odd.host, port: odd.port });
      await direct.config("SET", "maxmemory-policy", "allkeys-random");
      direct.disconnect();
      const bad = await checkRedisDurability(client);
      assert.equal(bad.severity, "error");
      assert.equal(bad.problems.length, 1);
      assert.ok(bad.problems[0]!.startsWith(`${odd.host}:${odd.port}: maxmemory-policy is allkeys-random`));
      assert.deepEqual(bad.maxmemoryPolicy?.split(",").sort(), ["allkeys-random", "noeviction"]);
    } finally {
      client.disconnect();
      await cluster.stop();
    }
  });
});
