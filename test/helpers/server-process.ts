import type { ChildProcess } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { launchServer } from "../../src/launcher/server-launcher.js";
import { REPO_ROOT, testModelDir } from "./paths.js";

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  logs: Array<Record<string, unknown>>;
  /** Send a signal and wait for the process to exit; resolves with the exit code (null if killed). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `rag-embed serve` as a real child process on a free port (the shared launcher,
 * src/launcher/) and resolves once it listens. The model is the local random-weight test model
 * unless EMBEDDING_MODEL is given.
 */
export async function startServerProcess(env: Record<string, string>): Promise<ServerProcess> {
  const server = await launchServer({
    cwd: REPO_ROOT,
    keepLogs: true,
    // Tests that load real models or start under load may take long; they have their own timeouts.
    startTimeoutMs: 600_000,
    env: {
      EMBEDDING_MODEL: testModelDir(),
      EMBEDDING_THREADS: "1",
      LOG_LEVEL: "info",
      PORT: "0",
      ...env,
    },
  });
  return {
    url: server.url,
    child: server.child,
    logs: server.logs,
    stop: (signal: NodeJS.Signals = "SIGTERM") => server.stop({ signal }),
  };
}

export async function waitFor<T>(
  probe: () => Promise<T | undefined | null | false>,
  { timeoutMs = 60_000, intervalMs = 100, what = "condition" } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Waits until the server's /ready answers 200 (model loaded, queue and store answering). */
export async function waitUntilReady(url: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(async () => (await fetch(`${url}/ready`)).status === 200, { what: "ready", timeoutMs });
}

export async function getJson<T = Record<string, unknown>>(
  url: string,
): Promise<{ status: number; body: T }> {
  const response = await fetch(url);
  return { status: response.status, body: (await response.json()) as T };
}

export async function postJson<T = Record<string, unknown>>(
  url: string,
  body: unknown,
): Promise<{ status: number; body: T; headers: Headers }> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as T, headers: response.headers };
}

/** A port that was free a moment ago, for servers that must come back on the same address. */
export async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
