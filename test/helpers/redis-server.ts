import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./server-process.js";

const BINARY = "redis-server";
const READY_TIMEOUT_MS = 15_000;

/** Throws a clear error when redis-server is not installed (CI must install it: never skip). */
export function assertRedisServerInstalled(): void {
  const probe = spawnSync(BINARY, ["--version"], { encoding: "utf8" });
  if (probe.error !== undefined || probe.status !== 0) {
    throw new Error(
      `${BINARY} is not installed or not on PATH (${probe.error?.message ?? `exit ${probe.status}`}). ` +
        "The Redis queue tests need it: apt-get install -y redis-server (CI's .ci/run installs it).",
    );
  }
}

/** One PING over a raw socket: true on +PONG (false while refused or -LOADING the AOF). */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let data = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on("error", () => done(false));
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      data += chunk.toString();
      if (data.includes("\r\n")) done(data.startsWith("+PONG"));
    });
  });
}

/**
 * A throwaway redis-server on 127.0.0.1 with a free port, its own temp dir, AOF on with
 * `appendfsync always` (as production must run it) and no RDB snapshots.
 */
export class RedisTestServer {
  readonly port: number;
  readonly dir: string;
  private process: ChildProcess | null = null;
  private log = "";

  private constructor(
    port: number,
    dir: string,
    private readonly extraArgs: string[] = [],
  ) {
    this.port = port;
    this.dir = dir;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /**
   * `extraArgs` come after the defaults and win over them, e.g. `["--appendonly", "no"]` or
   * `["--rename-command", "CONFIG", ""]` to stand in for a misconfigured or managed Redis.
   */
  static async start(extraArgs: string[] = []): Promise<RedisTestServer> {
    assertRedisServerInstalled();
    const server = new RedisTestServer(
      await freePort(),
      mkdtempSync(join(tmpdir(), "redis-test-")),
      extraArgs,
    );
    await server.launch();
    return server;
  }

  /** Kills the server (SIGKILL by default: no shutdown save) and starts it again on the same dir and port. */
  async restart(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    await this.kill(signal);
    await this.launch();
  }

  /** Stops the server and removes its directory. */
  async stop(): Promise<void> {
    await this.kill("SIGTERM");
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * Freezes the server (SIGSTOP): connections stay open and the kernel still accepts new ones, but
   * nothing is answered, as with a hung host or a network partition. `resume` thaws it.
   */
  pause(): void {
    this.process?.kill("SIGSTOP");
  }

  resume(): void {
    this.process?.kill("SIGCONT");
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const child = this.process;
    this.process = null;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill(signal);
    await exited;
  }

  private async launch(): Promise<void> {
    const args = [
      "--port",
      String(this.port),
      "--bind",
      "127.0.0.1",
      "--dir",
      this.dir,
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
      ...this.extraArgs,
    ];
    const child = spawn(BINARY, args, { stdio: ["ignore", "pipe", "pipe"] });
    this.process = child;
    this.log = "";
    const append = (chunk: Buffer) => {
      this.log = (this.log + chunk.toString()).slice(-4000);
    };
    child.stdout?.on("data", append);
    child.stderr?.on("data", append);
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) break;
      if (await ping(this.port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    await this.kill("SIGKILL");
    throw new Error(`redis-server did not become ready on port ${this.port}:\n${this.log}`);
  }
}
