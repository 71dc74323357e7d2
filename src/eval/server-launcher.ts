import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { dirname, extname, resolve } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
/** The package root, from src/eval (tsx) or dist/eval (built). */
export const PACKAGE_ROOT = resolve(HERE, "../..");

export interface LaunchedServer {
  url: string;
  child: ChildProcess;
  /** The last lines of stderr and of non-JSON stdout, for error messages. */
  tail(): string;
  /** SIGTERM, wait for the exit (SIGKILL after graceMs); resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

/**
 * Starts `rag-embed serve` as a child process on its own port and resolves with its URL once it
 * logs "listening". Runs the TypeScript entry through tsx when this file runs from source, the
 * built entry otherwise. `env` is added to the current environment (undefined values unset it).
 */
export async function launchServer(
  env: Record<string, string | undefined>,
  { startTimeoutMs = 120_000 } = {},
): Promise<LaunchedServer> {
  const fromSource = extname(fileURLToPath(import.meta.url)) === ".ts";
  const entry = resolve(HERE, "../cli", fromSource ? "main.ts" : "main.js");
  const args = fromSource ? ["--import", "tsx", entry, "serve"] : [entry, "serve"];
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete childEnv[key];
    else childEnv[key] = value;
  }
  const child = spawn(process.execPath, args, {
    cwd: PACKAGE_ROOT,
    env: childEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const tailLines: string[] = [];
  const remember = (line: string) => {
    tailLines.push(line);
    if (tailLines.length > 40) tailLines.shift();
  };
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (data: string) => {
    for (const line of data.split("\n")) if (line.trim()) remember(line);
  });
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  let listeningUrl: ((url: string) => void) | undefined;
  const listening = new Promise<string>((resolveUrl) => {
    listeningUrl = resolveUrl;
  });
  // Read every stdout line for the life of the process, so a chatty server never blocks on a full pipe.
  createInterface({ input: child.stdout! }).on("line", (line) => {
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      remember(line);
      return;
    }
    const msg = typeof entry.msg === "string" ? entry.msg : "";
    if (typeof entry.level === "number" && entry.level >= 50) remember(line);
    if (msg === "listening" && typeof entry.url === "string") listeningUrl?.(entry.url);
  });

  const tail = () => tailLines.join("\n");
  const stop = async (graceMs = 60_000): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    try {
      const [code] = await exited;
      return code;
    } finally {
      clearTimeout(timer);
    }
  };

  const timeout = sleep(startTimeoutMs, "timeout" as const, { ref: false });
  const outcome = await Promise.race([
    listening,
    exited.then(([code, signal]) => ({ code, signal })),
    timeout,
  ]);
  if (typeof outcome === "string" && outcome !== "timeout") {
    return { url: outcome, child, tail, stop };
  }
  await stop(5_000);
  const why =
    outcome === "timeout"
      ? `did not listen within ${startTimeoutMs} ms`
      : `exited (${outcome.code ?? outcome.signal}) before listening`;
  throw new Error(`The server ${why}:\n${tail()}`);
}
