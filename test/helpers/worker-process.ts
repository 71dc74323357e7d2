import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { REPO_ROOT } from "./paths.js";

const START_TIMEOUT_MS = 60_000;

export interface WorkerProcess {
  child: ChildProcess;
  logs: Array<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** `rag-embed worker`: no HTTP; ready once it logs "worker started" (model loaded, pipeline running). */
export async function startWorker(env: Record<string, string>): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "worker"], {
    cwd: REPO_ROOT,
    // WORKER_PORT 0: several workers on one host, each with its own metrics port.
    env: { ...process.env, WORKER_PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Array<Record<string, unknown>> = [];
  const stderr: string[] = [];
  child.stderr?.on("data", (data: Buffer) => stderr.push(data.toString()));
  const exited = once(child, "exit");
  const stop = async (signal: NodeJS.Signals = "SIGKILL") => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    await exited;
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("worker did not start in time")), START_TIMEOUT_MS);
      createInterface({ input: child.stdout! }).on("line", (line) => {
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          logs.push(entry);
          if (entry.msg === "worker started") {
            clearTimeout(timer);
            resolve();
          }
        } catch {
          logs.push({ raw: line });
        }
      });
      exited.then(([code]) => {
        clearTimeout(timer);
        reject(
          new Error(
            `worker exited with ${code} before "worker started": ${stderr.join("").slice(-2000)}` +
              JSON.stringify(logs.slice(-5)),
          ),
        );
      });
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return { child, logs, stop };
}
