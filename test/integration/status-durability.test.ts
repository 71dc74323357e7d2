/**
 * GET /v1/status says how durable the queue's engine is, and a server on a badly configured Redis
 * says so in its start-up log: never silent.
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, describe, it } from "node:test";
import type { ServerStatus } from "../../src/client/types.js";
import type { HttpServer } from "../../src/main.js";
import { startInProcess } from "../helpers/in-process-server.js";
import { tempDir } from "../helpers/paths.js";
import { RedisTestServer } from "../helpers/redis-server.js";
import { getJson, type ServerProcess, startServerProcess } from "../helpers/server-process.js";

describe("GET /v1/status: durability", () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const step of cleanup.reverse()) await step();
  });

  it("embedded SQLite queue: verified, nothing to configure", async () => {
    const server: HttpServer = await startInProcess({});
    cleanup.push(() => server.shutdown(1000));
    const { status, body } = await getJson<ServerStatus>(`${server.url}/v1/status`);
    assert.equal(status, 200);
    assert.deepEqual(body.durability, { queue: "sqlite", verified: true, severity: "ok", problems: [] });
  });

  it("Redis with CONFIG disabled and an evicting policy: read through INFO, logged at start-up", async () => {
    const redis = await RedisTestServer.start([
      "--rename-command",
      "CONFIG",
      "",
      "--maxmemory-policy",
      "allkeys-lru",
    ]);
    cleanup.push(() => redis.stop());
    const dataDir = tempDir("status-durability");
    cleanup.push(async () => rmSync(dataDir, { recursive: true, force: true }));
    const server: ServerProcess = await startServerProcess({
      QUEUE_URL: redis.url,
      QUEUE_PREFIX: "durability-test:",
      DATA_DIR: dataDir,
    });
    cleanup.push(() => server.stop("SIGKILL"));

    const { body } = await getJson<ServerStatus>(`${server.url}/v1/status`);
    const durability = body.durability;
    assert.equal(durability.queue, "redis");
    assert.equal(durability.source, "info");
    assert.equal(durability.verified, false);
    assert.equal(durability.severity, "error");
    assert.equal(durability.maxmemory_policy, "allkeys-lru");
    assert.equal(durability.appendonly, "yes");
    assert.equal(durability.appendfsync, null);
    assert.equal(durability.problems.length, 2);
    assert.ok(durability.problems.some((p) => p.startsWith("maxmemory-policy is allkeys-lru")));
    assert.ok(durability.problems.some((p) => p.startsWith("appendfsync unverified")));
    assert.ok(!Number.isNaN(Date.parse(String(durability.checked_at))));

    // The start-up warning lists the same problems.
    const warning = server.logs.find((entry) => String(entry.msg).startsWith("Redis durability"));
    assert.ok(warning, "a start-up warning about Redis durability");
    assert.equal(warning.level, 40);
    for (const problem of durability.problems) assert.ok(String(warning.msg).includes(problem));
  });
});
