import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { dirname, extname, resolve } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { RagEmbedClient } from "../client/index.js";

const HERE = dirname(fileURLToPath(import.meta.url));
/** The package root, from src/launcher (tsx) or dist/launcher (built). */
export const PACKAGE_ROOT = resolve(HERE, "../..");

export interface LaunchOptions {
  /**
   * `serve` (default): up once it listens. `worker`: no data routes; up once it logs "worker started"
   * (model loaded, pipeline running); `url` is then its probes-and-metrics port (WORKER_PORT).
   */
  role?: "serve" | "worker";
  /** Added to the current environment; an undefined value unsets the variable. */
  env?: Record<string, string | undefined>;
  /**
   * The CLI entry to run: default src/cli/main.ts through tsx when this file runs from source, the
   * built dist/cli/main.js otherwise. A `.ts` entry always runs through tsx.
   */
  entry?: string;
  cwd?: string;
  /** Give up (and stop the child) when the server has not come up within this long (default 120 s). */
  startTimeoutMs?: number;
  /** Also wait until GET /ready answers 200 (the model loaded, the backends answer). */
  waitUntilReady?: boolean;
  /** Keep every JSON log line the server writes to stdout in `logs` (tests read them). */
  keepLogs?: boolean;
  /** Copy the server's stderr to this process's stderr as it comes (the bench shows native crashes). */
  echoStderr?: boolean;
}

export interface LaunchedServer {
  url: string;
  child: ChildProcess;
  /** A client of the server, without an API key (make your own `RagEmbedClient` to send one). */
  client: RagEmbedClient;
  /** The JSON log lines seen so far (only with `keepLogs`). */
  logs: Array<Record<string, unknown>>;
  /** The last lines of stderr, of non-JSON stdout and of error logs, for error messages. */
  tail(): string;
  /**
   * Sends `signal` (default SIGTERM) and waits for the exit; with `graceMs`, SIGKILL after that long.
   * Resolves with the exit code (null when killed by a signal).
   */
  stop(options?: { signal?: NodeJS.Signals; graceMs?: number }): Promise<number | null>;
}

/**
 * Starts `rag-embed serve` (or `worker`) as a child process and resolves once it listens (its "listening" log
 * line gives the URL, so PORT=0 works), and with `waitUntilReady` once GET /ready says ready. The one
 * way the tests, the eval and the bench start a server.
 */
export async function launchServer(options: LaunchOptions = {}): Promise<LaunchedServer> {
  const { env = {}, cwd = PACKAGE_ROOT, startTimeoutMs = 120_000 } = options;
  const entry = options.entry ?? defaultEntry();
  const role = options.role ?? "serve";
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete childEnv[key];
    else childEnv[key] = value;
  }
  // As `npm start` and the Dockerfile run it: V8's young generation capped at 2 MB semi-spaces unless
  // NODE_OPTIONS says otherwise (docs/bench.md, "Peak RSS": the server's peak 165–169 → 127–135 MB).
  const node = childEnv.NODE_OPTIONS?.includes("semi-space-size") ? [] : ["--max-semi-space-size=2"];
  const args = extname(entry) === ".ts" ? [...node, "--import", "tsx", entry, role] : [...node, entry, role];
  // The URL comes from the "listening" line, logged at info. A quieter server (the bench runs at
  // warn) gets a free port chosen here, and is up once GET /health answers.
  let knownUrl: string | undefined;
  const quiet = !["trace", "debug", "info"].includes(childEnv.LOG_LEVEL ?? "info");
  // A worker's start is seen only in its log.
  if (quiet && role === "worker") childEnv.LOG_LEVEL = "info";
  else if (quiet) {
    if ((childEnv.PORT ?? "0") === "0") childEnv.PORT = String(await freePort());
    const host =
      !childEnv.HOST || childEnv.HOST === "0.0.0.0" || childEnv.HOST === "::" ? "127.0.0.1" : childEnv.HOST;
    knownUrl = `http://${host.includes(":") ? `[${host}]` : host}:${childEnv.PORT}`;
  }
  const child = spawn(process.execPath, args, { cwd, env: childEnv, stdio: ["ignore", "pipe", "pipe"] });

  const logs: Array<Record<string, unknown>> = [];
  const tailLines: string[] = [];
  const remember = (line: string) => {
    tailLines.push(line);
    if (tailLines.length > 40) tailLines.shift();
  };
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (data: string) => {
    if (options.echoStderr) process.stderr.write(data);
    for (const line of data.split("\n")) if (line.trim()) remember(line);
  });
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  let listeningUrl: ((url: string) => void) | undefined;
  const listening = new Promise<string>((resolveUrl) => {
    listeningUrl = resolveUrl;
  });
  const upMessage = role === "worker" ? "worker started" : "listening";
  let seenUrl = "";
  // Every stdout line is read for the life of the process, so a chatty server never blocks on a full pipe.
  createInterface({ input: child.stdout! }).on("line", (line) => {
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch {
      remember(line);
      if (options.keepLogs) logs.push({ raw: line });
      return;
    }
    if (options.keepLogs) logs.push(record);
    if (typeof record.level === "number" && record.level >= 50) remember(line);
    if (record.msg === "listening" && typeof record.url === "string") seenUrl = record.url;
    if (record.msg === upMessage) listeningUrl?.(seenUrl);
  });

  const tail = () => tailLines.join("\n");
  const stop = async ({
    signal = "SIGTERM",
    graceMs,
  }: {
    signal?: NodeJS.Signals;
    graceMs?: number;
  } = {}) => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill(signal);
    const timer = graceMs === undefined ? undefined : setTimeout(() => child.kill("SIGKILL"), graceMs);
    try {
      const [code] = await exited;
      return code;
    } finally {
      clearTimeout(timer);
    }
  };

  const deadline = Date.now() + startTimeoutMs;
  const failure = async (why: string): Promise<never> => {
    await stop({ graceMs: 5_000 });
    throw new Error(`The server ${why}:\n${tail()}`);
  };
  const died = exited.then(([code, signal]) => ({ code, signal }));
  const timeout = sleep(startTimeoutMs, "timeout" as const, { ref: false });
  const answering = knownUrl === undefined ? listening : healthy(knownUrl, () => child.exitCode === null);
  const outcome = await Promise.race([answering, died, timeout]);
  if (outcome === "timeout") return failure(`did not log "${upMessage}" within ${startTimeoutMs} ms`);
  if (typeof outcome !== "string")
    return failure(`exited (${outcome.code ?? outcome.signal}) before logging "${upMessage}"`);
  const url = outcome;
  const client = new RagEmbedClient({ baseUrl: url });
  if (options.waitUntilReady) {
    const probe = new RagEmbedClient({ baseUrl: url, maxNetworkRetries: 0, requestTimeoutMs: 10_000 });
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) return failure("exited before it was ready");
      if (
        await probe.ready().then(
          () => true,
          () => false,
        )
      )
        break;
      if (Date.now() > deadline) return failure(`was not ready within ${startTimeoutMs} ms`);
      await sleep(100);
    }
  }
  return { url, child, client, logs, tail, stop };
}

/** Resolves with `url` once its GET /health answers (polled while `alive()`). */
async function healthy(url: string, alive: () => boolean): Promise<string> {
  const probe = new RagEmbedClient({ baseUrl: url, maxNetworkRetries: 0, requestTimeoutMs: 5_000 });
  while (alive()) {
    if (
      await probe.health().then(
        () => true,
        () => false,
      )
    )
      return url;
    await sleep(100);
  }
  return new Promise(() => {}); // the exit is reported by the race
}

/** A port that was free a moment ago. */
function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** The CLI entry next to this file: TypeScript through tsx from source, JavaScript when built. */
function defaultEntry(): string {
  const fromSource = extname(fileURLToPath(import.meta.url)) === ".ts";
  return resolve(HERE, "../cli", fromSource ? "main.ts" : "main.js");
}
