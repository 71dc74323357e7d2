/**
 * npm run bench -- --distributed [--docs N] [--runs N] [--configs 1x1,2x1] [--queue-chunks N] [--json FILE]
 *
 * First the BullMQ queue alone on one redis-server (AOF, appendfsync always): enqueue and
 * reserve + ack rates, Redis bytes per queued and per stored chunk (bench/redis-queue.ts). Then
 * distributed-mode throughput on this machine: one API process (ROLE=api) and W worker processes
 * (`rag-embed worker`, T ONNX threads each) sharing a Redis queue (AOF, appendfsync always) and
 * the SQLite store in one DATA_DIR. A config "WxT" = W workers × T threads. Workers are started
 * and ready first; then the SciFact slice (title + " " + text, OVERFLOW_POLICY=truncate) is
 * enqueued as fast as the API accepts it, and the clock runs from the first request until the
 * queue is empty (nothing pending or running). Tokens are the receipts' token counts.
 * Not part of npm test; see docs/distributed.md for the numbers.
 */
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { launchServer } from "../src/launcher/server-launcher.js";
import { RedisTestServer } from "../test/helpers/redis-server.js";
import {
  buildServer,
  jobTokens,
  loadCorpus,
  MODEL_DIR,
  median,
  pool,
  postChunks,
  ROOT,
  round,
  slices,
  startServer,
  status,
} from "./lib.js";
import { measureRedisQueue, type RedisQueueFigures } from "./redis-queue.js";

const { values: args } = parseArgs({
  options: {
    docs: { type: "string", default: "800" },
    runs: { type: "string", default: "2" },
    configs: { type: "string", default: "1x1,2x1" },
    "queue-chunks": { type: "string", default: "10000" },
    json: { type: "string" },
  },
});

const log = (msg: string) => process.stderr.write(`[bench:distributed] ${msg}\n`);

interface Config {
  workers: number;
  threads: number;
}

interface RunResult {
  seconds: number;
  chunks: number;
  tokens: number;
  chunksPerSecond: number;
  tokensPerSecond: number;
}

async function startWorker(main: string, env: Record<string, string>): Promise<ChildProcess> {
  const worker = await launchServer({
    role: "worker",
    entry: main,
    cwd: ROOT,
    echoStderr: true,
    env: { WORKER_PORT: "0", ...env, LOG_LEVEL: "info" },
  });
  return worker.child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGKILL");
  await exited;
}

async function runOnce(
  main: string,
  redis: RedisTestServer,
  config: Config,
  run: number,
): Promise<RunResult> {
  const dataDir = mkdtempSync(join(tmpdir(), "rag-bench-dist-"));
  const shared = {
    QUEUE_URL: redis.url,
    QUEUE_PREFIX: `bench-${config.workers}x${config.threads}-${run}-${Date.now()}`,
    DATA_DIR: dataDir,
    VECTOR_STORE: "sqlite",
    EMBEDDING_MODEL: MODEL_DIR,
    OVERFLOW_POLICY: "truncate",
    MAX_QUEUE_SIZE: "1000000",
  };
  const workers: ChildProcess[] = [];
  const api = await startServer(main, { ...shared, ROLE: "api", EMBEDDING_THREADS: "1", LOG_LEVEL: "warn" });
  try {
    for (let i = 0; i < config.workers; i++) {
      workers.push(await startWorker(main, { ...shared, EMBEDDING_THREADS: String(config.threads) }));
    }
    const docs = loadCorpus().slice(0, Number(args.docs));
    const started = performance.now();
    const posted = await pool(slices(docs, 50), 4, (batch) => postChunks(api.client, "bench", batch));
    const refused = posted.filter((p) => p.status !== 202);
    if (refused.length > 0) throw new Error(`${refused.length} requests refused (${refused[0]?.status})`);
    for (;;) {
      const s = await status(api.client);
      if (s.queue.pending_chunks === 0 && s.queue.running_chunks === 0) break;
      await sleep(100);
    }
    const seconds = (performance.now() - started) / 1000;
    let tokens = 0;
    let chunks = 0;
    for (const p of posted) {
      if (p.jobId === null) continue;
      const job = await jobTokens(api.client, p.jobId);
      tokens += job.tokens;
      chunks += job.stored;
    }
    if (chunks !== docs.length) throw new Error(`stored ${chunks} of ${docs.length} chunks`);
    return { seconds, chunks, tokens, chunksPerSecond: chunks / seconds, tokensPerSecond: tokens / seconds };
  } finally {
    await Promise.all(workers.map(stopChild));
    await api.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const configs: Config[] = args.configs.split(",").map((c) => {
    const [w, t] = c.split("x").map(Number);
    if (!w || !t) throw new Error(`bad config ${c}: want WORKERSxTHREADS, e.g. 2x1`);
    return { workers: w, threads: t };
  });
  log(`building the server into the bench cache (cores: ${availableParallelism()})`);
  const main = buildServer();
  const redis = await RedisTestServer.start();
  const results: Array<Config & { runs: RunResult[]; median: RunResult }> = [];
  let queueFigures: RedisQueueFigures | null = null;
  try {
    queueFigures = await measureRedisQueue(redis.url, Number(args["queue-chunks"]));
    log(`BullMQ queue on Redis (appendfsync always): ${JSON.stringify(queueFigures)}`);
    for (const config of configs) {
      const runs: RunResult[] = [];
      for (let run = 0; run < Number(args.runs); run++) {
        const result = await runOnce(main, redis, config, run);
        log(
          `${config.workers} worker(s) × ${config.threads} thread(s), run ${run + 1}: ` +
            `${result.chunks} chunks, ${result.tokens} tokens in ${round(result.seconds, 2)} s = ` +
            `${round(result.chunksPerSecond)} chunks/s, ${Math.round(result.tokensPerSecond)} tokens/s`,
        );
        runs.push(result);
      }
      const pick = (f: (r: RunResult) => number) => median(runs.map(f));
      results.push({
        ...config,
        runs,
        median: {
          seconds: pick((r) => r.seconds),
          chunks: pick((r) => r.chunks),
          tokens: pick((r) => r.tokens),
          chunksPerSecond: pick((r) => r.chunksPerSecond),
          tokensPerSecond: pick((r) => r.tokensPerSecond),
        },
      });
    }
  } finally {
    await redis.stop();
  }
  if (queueFigures) {
    const q = queueFigures;
    process.stdout.write(
      `| BullMQ queue, ${q.chunks} chunks of 1.5 KB | value |\n|---|---:|\n` +
        `| enqueue (requests of 100) | ${q.enqueueChunksPerSecond} chunks/s |\n` +
        `| reserve + ack (reservations of 64) | ${q.reserveAckChunksPerSecond} chunks/s |\n` +
        `| Redis bytes per queued chunk | ${q.bytesPerQueuedChunk} |\n` +
        `| Redis bytes per stored chunk (receipt, until JOB_RETENTION) | ${q.bytesPerStoredChunk} |\n` +
        `| Redis bytes (keys) left after retention | ${q.bytesAfterRetention} (${q.keysAfterRetention}) |\n\n`,
    );
  }
  process.stdout.write("| workers × threads | chunks/s | tokens/s | seconds |\n|---|---:|---:|---:|\n");
  for (const r of results) {
    process.stdout.write(
      `| ${r.workers} × ${r.threads} | ${round(r.median.chunksPerSecond)} | ${Math.round(r.median.tokensPerSecond)} | ${round(r.median.seconds, 2)} |\n`,
    );
  }
  if (args.json)
    writeFileSync(
      args.json,
      JSON.stringify({ cores: availableParallelism(), queue: queueFigures, results }, null, 2),
    );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
