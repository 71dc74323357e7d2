import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertRedisServerInstalled } from "./redis-server.js";
import { freePort } from "./server-process.js";

const READY_TIMEOUT_MS = 30_000;

export interface ClusterNodeAddress {
  host: string;
  port: number;
}

/** Every cluster node still running, killed if the test process exits without stopping them. */
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/** Runs a command to its end; rejects with its output when it fails or outlives `timeoutMs`. */
async function run(command: string, args: string[], timeoutMs = 15_000): Promise<string> {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (data: Buffer) => {
    output += data.toString();
  });
  child.stderr?.on("data", (data: Buffer) => {
    output += data.toString();
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const [code] = (await once(child, "exit")) as [number | null];
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${command} ${args.join(" ")} exited with ${code}:\n${output}`);
  return output;
}

/**
 * A throwaway Redis Cluster on 127.0.0.1: `nodes` masters (3 by default, no replicas), each a
 * redis-server with its own free port, free cluster-bus port (`--cluster-port`, Redis ≥ 7) and temp
 * dir, AOF on with `appendfsync always` as production must run it. `start` resolves once every node
 * reports `cluster_state:ok`; `stop` kills every node and removes the dirs.
 */
export class RedisTestCluster {
  private readonly children: ChildProcess[] = [];
  private readonly dirs: string[] = [];
  private readonly logs = new Map<number, string>();
  readonly nodes: ClusterNodeAddress[] = [];

  private constructor() {}

  /** `extraArgs` go to every node after the defaults (and win over them). */
  static async start(options: { nodes?: number; extraArgs?: string[] } = {}): Promise<RedisTestCluster> {
    assertRedisServerInstalled();
    const cluster = new RedisTestCluster();
    try {
      for (let i = 0; i < (options.nodes ?? 3); i++) await cluster.launchNode(options.extraArgs ?? []);
      const addresses = cluster.nodes.map((node) => `${node.host}:${node.port}`);
      await run("redis-cli", [
        "--cluster",
        "create",
        ...addresses,
        "--cluster-replicas",
        "0",
        "--cluster-yes",
      ]);
      await cluster.waitUntilOk();
      return cluster;
    } catch (error) {
      const logs = [...cluster.logs.entries()].map(([port, log]) => `--- node ${port}\n${log}`).join("\n");
      await cluster.stop();
      throw new Error(`Redis Cluster did not start: ${(error as Error).message}\n${logs}`);
    }
  }

  /** Startup nodes for ioredis' `new Cluster(...)`. */
  get startupNodes(): ClusterNodeAddress[] {
    return this.nodes.map((node) => ({ ...node }));
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.children.map(async (child) => {
        running.delete(child);
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, "exit");
        child.kill("SIGKILL");
        await exited;
      }),
    );
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
  }

  private async launchNode(extraArgs: string[]): Promise<void> {
    const port = await freePort();
    const busPort = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "redis-cluster-test-"));
    this.dirs.push(dir);
    const child = spawn(
      "redis-server",
      [
        "--port",
        String(port),
        "--cluster-port",
        String(busPort),
        "--bind",
        "127.0.0.1",
        "--dir",
        dir,
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        join(dir, "nodes.conf"),
        "--cluster-node-timeout",
        "5000",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--save",
        "",
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
        ...extraArgs,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    this.children.push(child);
    running.add(child);
    this.logs.set(port, "");
    const append = (data: Buffer) => this.logs.set(port, ((this.logs.get(port) ?? "") + data).slice(-4000));
    child.stdout?.on("data", append);
    child.stderr?.on("data", append);
    this.nodes.push({ host: "127.0.0.1", port });
    await this.poll(`node ${port} to answer PING`, async () => {
      if (child.exitCode !== null) throw new Error(`redis-server on ${port} exited with ${child.exitCode}`);
      return (await run("redis-cli", ["-p", String(port), "ping"]).catch(() => "")).trim() === "PONG";
    });
  }

  /** Slots assigned and gossip settled: every node must say so, not only the one asked. */
  private async waitUntilOk(): Promise<void> {
    for (const node of this.nodes) {
      await this.poll(`node ${node.port} to report cluster_state:ok`, async () => {
        const info = await run("redis-cli", ["-p", String(node.port), "cluster", "info"]).catch(() => "");
        return info.includes("cluster_state:ok");
      });
    }
  }

  private async poll(what: string, probe: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!(await probe())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
