import type { ChildProcess } from "node:child_process";
import { launchServer } from "../../src/launcher/server-launcher.js";
import { REPO_ROOT } from "./paths.js";

const START_TIMEOUT_MS = 60_000;

export interface WorkerProcess {
  child: ChildProcess;
  logs: Array<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * `rag-embed worker` through the shared launcher (src/launcher/): no data routes; ready once it logs
 * "worker started" (model loaded, pipeline running).
 */
export async function startWorker(env: Record<string, string>): Promise<WorkerProcess> {
  const worker = await launchServer({
    role: "worker",
    cwd: REPO_ROOT,
    keepLogs: true,
    startTimeoutMs: START_TIMEOUT_MS,
    // WORKER_PORT 0: several workers on one host, each with its own metrics port.
    env: { WORKER_PORT: "0", ...env },
  });
  return {
    child: worker.child,
    logs: worker.logs,
    stop: async (signal: NodeJS.Signals = "SIGKILL") => {
      await worker.stop({ signal });
    },
  };
}
