/**
 * Helpers for the benchmark: the corpus, a server child process (the shared launcher), process-tree
 * memory, HTTP timing. The bench talks to the server through the SDK (src/client).
 */
import { type ChildProcess, execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type RagEmbedClient, RagEmbedError } from "../src/client/index.js";
import type { ServerStatus } from "../src/client/types.js";
import { type LaunchedServer, launchServer } from "../src/launcher/server-launcher.js";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const MODEL_DIR = resolve(ROOT, process.env.BENCH_MODEL ?? "../shared/models/test-random-minilm-l6");
export const CORPUS = resolve(ROOT, process.env.BENCH_CORPUS ?? "../shared/datasets/scifact/corpus.jsonl");
/**
 * The bench's own files: the server build, the Python venv of the reference, derived model files. In
 * the checkout (git-ignored), not in node_modules, which worktrees may share.
 */
export const CACHE_DIR = join(ROOT, ".bench");
/** The server is compiled here (fresh each bench run), so tsx is not measured and dist/ is left alone. */
export const BUILD_DIR = join(CACHE_DIR, "dist");

export interface Doc {
  id: string;
  text: string;
}

/** BEIR SciFact documents in file order, text = (title + " " + text).trim(). */
export function loadCorpus(): Doc[] {
  return readFileSync(CORPUS, "utf8")
    .split("\n")
    .filter((line) => line.trim().length > 0)
    .map((line) => {
      const row = JSON.parse(line) as { _id: string; title?: string; text?: string };
      return { id: String(row._id), text: `${row.title ?? ""} ${row.text ?? ""}`.trim() };
    })
    .filter((doc) => doc.text.length > 0);
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

export function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function buildServer(): string {
  const main = join(BUILD_DIR, "cli", "main.js");
  execFileSync(
    process.execPath,
    [
      join(ROOT, "node_modules", "typescript", "bin", "tsc"),
      "-p",
      "tsconfig.build.json",
      "--outDir",
      BUILD_DIR,
    ],
    { cwd: ROOT, stdio: "inherit" },
  );
  // Static assets next to the sources (the dashboard) are not emitted by tsc: mirror them.
  cpSync(join(ROOT, "src"), BUILD_DIR, {
    recursive: true,
    filter: (source) => statSync(source).isDirectory() || !source.endsWith(".ts"),
  });
  if (!existsSync(main)) throw new Error(`build produced no ${main}`);
  return main;
}

/** pid and its descendants (the embedder child process). */
export function processTree(pid: number): number[] {
  const out = [pid];
  try {
    for (const task of readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/)) {
      if (task) out.push(...processTree(Number(task)));
    }
  } catch {
    // gone
  }
  return out;
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ: 100 on every Linux this runs on). */
const CLOCK_TICKS = 100;

/**
 * CPU seconds (user + system, all threads) a process has used so far, 0 when it is gone. CPU time, not
 * wall time, is what the throughput figures divide by: it holds while other tenants load the machine.
 */
export function cpuSeconds(pid: number): number {
  try {
    // Fields after the command name (which may contain spaces): state is field 3, utime 14, stime 15.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** CPU seconds of a process and its descendants (the server and its embedder child). */
export function treeCpuSeconds(pid: number): number {
  return processTree(pid).reduce((sum, p) => sum + cpuSeconds(p), 0);
}

/** VmRSS / VmHWM of one process in MB (0 when it is gone). */
export function procMemMb(pid: number, field: "VmRSS" | "VmHWM"): number {
  try {
    const match = readFileSync(`/proc/${pid}/status`, "utf8").match(new RegExp(`${field}:\\s+(\\d+) kB`));
    return match ? Number(match[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

export interface RunningServer {
  base: string;
  /** The SDK's client of this server: the bench talks to the server through it. */
  client: RagEmbedClient;
  child: ChildProcess;
  dataDir: string;
  /** Highest summed VmRSS of the tree seen by the sampler, and per-process VmHWM (read at stop). */
  memory: { peakTreeRssMb: number; hwmMb: Map<number, number> };
  stop(): Promise<void>;
}

/** The built server (`main`) through the shared launcher (src/launcher/), ready to take work. */
export async function startServer(main: string, env: Record<string, string>): Promise<RunningServer> {
  const dataDir = mkdtempSync(join(tmpdir(), "rag-bench-"));
  let server: LaunchedServer;
  try {
    server = await launchServer({
      entry: main,
      cwd: ROOT,
      waitUntilReady: true,
      echoStderr: true,
      env: {
        HOST: "127.0.0.1",
        PORT: "0",
        DATA_DIR: dataDir,
        EMBEDDING_MODEL: MODEL_DIR,
        OVERFLOW_POLICY: "truncate",
        MAX_QUEUE_SIZE: "1000000",
        LOG_LEVEL: "warn",
        ...env,
      },
    });
  } catch (error) {
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  const { child } = server;
  const pid = child.pid ?? 0;
  const memory = { peakTreeRssMb: 0, hwmMb: new Map<number, number>() };
  const sampleHwm = () => {
    for (const p of processTree(pid)) {
      const hwm = procMemMb(p, "VmHWM");
      if (hwm > 0) memory.hwmMb.set(p, Math.max(memory.hwmMb.get(p) ?? 0, hwm));
    }
  };
  const sampler = setInterval(() => {
    const total = processTree(pid).reduce((sum, p) => sum + procMemMb(p, "VmRSS"), 0);
    memory.peakTreeRssMb = Math.max(memory.peakTreeRssMb, total);
    sampleHwm();
  }, 200);
  const stop = async () => {
    sampleHwm();
    clearInterval(sampler);
    await server.stop({ signal: "SIGKILL" });
    rmSync(dataDir, { recursive: true, force: true });
  };
  return { base: server.url, client: server.client, child, dataDir, memory, stop };
}

export interface PostResult {
  status: number;
  ms: number;
  jobId: string | null;
}

/** One ingest request of `chunks`, timed; a refusal is returned with its status, not thrown. */
export async function postChunks(
  client: RagEmbedClient,
  collection: string,
  chunks: Doc[],
): Promise<PostResult> {
  const started = performance.now();
  try {
    const result = await client.ingest(
      collection,
      chunks.map((c) => ({ id: c.id, text: c.text })),
      { batchSize: chunks.length, waitForCapacity: "never", maxWaitMs: 0 },
    );
    return { status: 202, ms: performance.now() - started, jobId: result.jobIds[0] ?? null };
  } catch (error) {
    if (!(error instanceof RagEmbedError)) throw error;
    return { status: error.status ?? 0, ms: performance.now() - started, jobId: null };
  }
}

export function status(client: RagEmbedClient): Promise<ServerStatus> {
  return client.status();
}

/** Sum of the receipts' tokens and count of stored chunks of one job, all pages. */
export async function jobTokens(
  client: RagEmbedClient,
  jobId: string,
): Promise<{ tokens: number; stored: number }> {
  let tokens = 0;
  let stored = 0;
  let after: number | null = null;
  do {
    const page = await client.job(jobId, { limit: 1000, ...(after === null ? {} : { after }) });
    for (const chunk of page.chunks) {
      tokens += chunk.tokens ?? 0;
      if (chunk.state === "stored") stored += 1;
    }
    after = page.next_cursor;
  } while (after !== null);
  return { tokens, stored };
}

/** Splits into consecutive slices of `size`. */
export function slices<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Runs `work` over items with at most `limit` in flight, preserving start order. */
export async function pool<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    for (;;) {
      const index = next++;
      const item = items[index];
      if (index >= items.length || item === undefined) return;
      results[index] = await work(item);
    }
  });
  await Promise.all(runners);
  return results;
}
