/**
 * Helpers for the benchmark: the corpus, a server child process, process-tree memory, HTTP timing.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

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

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address ? address.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
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
  child: ChildProcess;
  dataDir: string;
  /** Highest summed VmRSS of the tree seen by the sampler, and per-process VmHWM (read at stop). */
  memory: { peakTreeRssMb: number; hwmMb: Map<number, number> };
  stop(): Promise<void>;
}

export async function startServer(main: string, env: Record<string, string>): Promise<RunningServer> {
  const dataDir = mkdtempSync(join(tmpdir(), "rag-bench-"));
  const port = await freePort();
  const child = spawn(process.execPath, [main, "serve"], {
    cwd: ROOT,
    env: {
      ...process.env,
      HOST: "127.0.0.1",
      PORT: String(port),
      DATA_DIR: dataDir,
      EMBEDDING_MODEL: MODEL_DIR,
      OVERFLOW_POLICY: "truncate",
      MAX_QUEUE_SIZE: "1000000",
      LOG_LEVEL: "warn",
      ...env,
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
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
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  const base = `http://127.0.0.1:${port}`;
  const stop = async () => {
    sampleHwm();
    clearInterval(sampler);
    child.kill("SIGKILL");
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode} before ready`);
    try {
      const res = await fetch(`${base}/ready`);
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error("server not ready in 120 s");
    }
    await sleep(100);
  }
  return { base, child, dataDir, memory, stop };
}

export interface PostResult {
  status: number;
  ms: number;
  jobId: string | null;
}

export async function postChunks(base: string, collection: string, chunks: Doc[]): Promise<PostResult> {
  const body = JSON.stringify({ chunks: chunks.map((c) => ({ id: c.id, text: c.text })) });
  const started = performance.now();
  const res = await fetch(`${base}/v1/collections/${collection}/chunks`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  const json = (await res.json()) as { job_id?: string };
  return { status: res.status, ms: performance.now() - started, jobId: json.job_id ?? null };
}

export interface ServerStatus {
  queue: { pending_chunks: number; running_chunks: number };
  throughput: { chunks_per_second: number; tokens_per_second: number };
}

export async function status(base: string): Promise<ServerStatus> {
  const res = await fetch(`${base}/v1/status`);
  return (await res.json()) as ServerStatus;
}

/** Sum of the receipts' tokens and count of stored chunks of one job, all pages. */
export async function jobTokens(base: string, jobId: string): Promise<{ tokens: number; stored: number }> {
  let tokens = 0;
  let stored = 0;
  let after: string | null = null;
  do {
    const url = `${base}/v1/jobs/${jobId}?limit=1000${after ? `&after=${encodeURIComponent(after)}` : ""}`;
    const page = (await (await fetch(url)).json()) as {
      chunks: Array<{ state: string; tokens?: number | null }>;
      next_cursor: string | null;
    };
    for (const chunk of page.chunks) {
      tokens += chunk.tokens ?? 0;
      if (chunk.state === "stored") stored += 1;
    }
    after = page.next_cursor;
  } while (after);
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
