/**
 * The Redis Cluster test helper, and the rule a queue on a Cluster lives by: keys one script or
 * transaction touches must share a hash slot, which a common hash tag (`{rag}:...`) guarantees.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Cluster, Redis } from "ioredis";
import { RedisTestCluster } from "../helpers/redis-cluster.js";

const TOUCH_BOTH = "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('INCR', KEYS[2])";

describe("Redis Cluster (3 masters on 127.0.0.1)", () => {
  let cluster: RedisTestCluster;
  let client: Cluster;

  before(async () => {
    cluster = await RedisTestCluster.start();
    client = new Cluster(cluster.startupNodes, { redisOptions: { maxRetriesPerRequest: 2 } });
    await new Promise<void>((resolve, reject) => {
      client.once("ready", resolve);
      client.once("error", reject);
    });
  });

  after(async () => {
    client?.disconnect();
    await cluster?.stop();
  });

  it("runs three masters that all report cluster_state:ok and split the 16384 slots", async () => {
    assert.equal(cluster.nodes.length, 3);
    const ports = new Set<number>();
    for (const node of cluster.nodes) {
      const direct = new Redis({ host: node.host, port: node.port, lazyConnect: true });
      try {
        await direct.connect();
        const info = String(await direct.cluster("INFO"));
        assert.match(info, /cluster_state:ok/, `node ${node.port}`);
        assert.match(info, /cluster_slots_assigned:16384/);
        assert.match(info, /cluster_known_nodes:3/);
      } finally {
        direct.disconnect();
      }
      ports.add(node.port);
    }
    assert.equal(ports.size, 3, "three distinct ports");
    assert.equal(client.nodes("master").length, 3, "ioredis sees three masters");
  });

  it("keys with one hash tag share a slot: MULTI/EXEC and a Lua script over both work", async () => {
    const [slotA, slotB] = await Promise.all([
      client.cluster("KEYSLOT", "{rag}:a"),
      client.cluster("KEYSLOT", "{rag}:b"),
    ]);
    assert.equal(slotA, slotB);

    const results = await client.multi().set("{rag}:a", "1").incr("{rag}:b").exec();
    assert.deepEqual(results, [
      [null, "OK"],
      [null, 1],
    ]);
    assert.equal(await client.eval(TOUCH_BOTH, 2, "{rag}:a", "{rag}:b", "2"), 2);
    assert.deepEqual(await client.mget("{rag}:a", "{rag}:b"), ["2", "2"]);
  });

  it("keys without a tag land in different slots, and one script over both fails with CROSSSLOT", async () => {
    const [slotA, slotB] = await Promise.all([
      client.cluster("KEYSLOT", "a"),
      client.cluster("KEYSLOT", "b"),
    ]);
    assert.notEqual(slotA, slotB);
    await assert.rejects(client.eval(TOUCH_BOTH, 2, "a", "b", "1"), /CROSSSLOT/);
    // Nothing was written: the whole script was refused before it ran.
    assert.equal(await client.exists("a"), 0);
  });
});
