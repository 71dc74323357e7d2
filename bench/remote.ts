/**
 * npm run bench -- --remote [--docs N] [--runs N] [--engines local,self,instant] [--infinity-url URL
 *                            --infinity-model NAME] [--json FILE]
 *
 * Ingest through a remote engine against the local embedder, on the same SciFact slice (title + " " +
 * text, OVERFLOW_POLICY=truncate), in interleaved rounds:
 * - local:    one server embedding with its own ONNX child process (the default EMBEDDER=local);
 * - self:     a server with EMBEDDER=remote in front of a second server (this product) as the engine,
 *             POST /v1/embeddings; both on this machine, so the same cores do the same ONNX work;
 * - instant:  EMBEDDER=remote in front of an engine that answers at once with a constant vector: what
 *             the remote path itself costs (tokenizing, packing, HTTP, JSON, store) without any model;
 * - infinity: EMBEDDER=remote in front of an Infinity server you started (--infinity-url), if given.
 * The clock runs from the first POST until nothing is pending or running; tokens are the receipts'.
 * CPU time is the ingest server's process tree plus, for `self`, the engine server's (the instant
 * engine runs inside the bench and costs next to nothing; Infinity's is not counted): tokens per
 * CPU-second hold when other processes share the cores, and the ratio to local is taken per round.
 * For remote runs the server's own rag_embed_remote_* metrics give requests, texts per request and the
 * mean request latency. Not part of npm test; figures in docs/remote-embedders.md.
 */
import { writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { availableParallelism } from "node:os";
import { basename } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import type { RagEmbedClient } from "../src/client/index.js";
import {
  buildServer,
  jobTokens,
  loadCorpus,
  MODEL_DIR,
  median,
  pool,
  postChunks,
  type RunningServer,
  round,
  slices,
  startServer,
  status,
  treeCpuSeconds,
} from "./lib.js";

const { values: args } = parseArgs({
  options: {
    docs: { type: "string", default: "800" },
    runs: { type: "string", default: "2" },
    engines: { type: "string", default: "local,self,instant" },
    "infinity-url": { type: "string" },
    "infinity-model": { type: "string", default: "all-MiniLM-L6-v2" },
    json: { type: "string" },
  },
});

const log = (msg: string) => process.stderr.write(`[bench:remote] ${msg}\n`);

interface RunResult {
  engine: string;
  /** Which round (0-based) the run belongs to; set by main. */
  round?: number;
  seconds: number;
  chunks: number;
  tokens: number;
  tokensPerSecond: number;
  /** CPU seconds of the ingest server's tree and of the engine's, when it is a process we started. */
  cpuSeconds: number;
  engineCpuSeconds: number;
  tokensPerCpuSecond: number;
  /** Remote runs: requests to the engine, texts per request, mean request latency in ms. */
  requests?: number;
  textsPerRequest?: number;
  meanRequestMs?: number;
  /** Remote runs: the ingest server's CPU milliseconds per engine request (the remote path's own cost). */
  serverCpuMsPerRequest?: number;
}

/** An engine that costs nothing: the same 384-dimensional vector for every input, at once. */
async function startInstantEngine(): Promise<{ url: string; close(): Promise<void> }> {
  const vector = JSON.stringify(Array.from({ length: 384 }, (_, i) => (i % 7) / 7 - 0.4));
  const server: Server = createServer((req, res) => {
    const body: Buffer[] = [];
    req.on("data", (chunk: Buffer) => body.push(chunk));
    req.on("end", () => {
      const { input, model } = JSON.parse(Buffer.concat(body).toString("utf8")) as {
        input: string[];
        model: string;
      };
      const data = input.map((_, index) => `{"object":"embedding","index":${index},"embedding":${vector}}`);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        `{"object":"list","model":${JSON.stringify(model)},"data":[${data.join(",")}],"usage":{"prompt_tokens":0,"total_tokens":0}}`,
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Sum of a Prometheus counter or histogram series from GET /metrics. */
async function metric(client: RagEmbedClient, name: string): Promise<number> {
  const text = await client.metrics();
  return text
    .split("\n")
    .filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
}

async function ingest(
  server: RunningServer,
  engine: string,
  remote: boolean,
  enginePid: number | null = null,
): Promise<RunResult> {
  const docs = loadCorpus().slice(0, Number(args.docs));
  const serverPid = server.child.pid ?? 0;
  const cpu0 = treeCpuSeconds(serverPid);
  const engineCpu0 = enginePid ? treeCpuSeconds(enginePid) : 0;
  const started = performance.now();
  const posted = await pool(slices(docs, 50), 4, (batch) => postChunks(server.client, "bench", batch));
  const refused = posted.filter((p) => p.status !== 202);
  if (refused.length > 0) throw new Error(`${refused.length} requests refused (${refused[0]?.status})`);
  for (;;) {
    const s = await status(server.client);
    if (s.queue.pending_chunks === 0 && s.queue.running_chunks === 0) break;
    await sleep(100);
  }
  const seconds = (performance.now() - started) / 1000;
  const cpuSeconds = treeCpuSeconds(serverPid) - cpu0;
  const engineCpuSeconds = enginePid ? treeCpuSeconds(enginePid) - engineCpu0 : 0;
  let tokens = 0;
  let chunks = 0;
  for (const p of posted) {
    if (p.jobId === null) continue;
    const job = await jobTokens(server.client, p.jobId);
    tokens += job.tokens;
    chunks += job.stored;
  }
  if (chunks !== docs.length) throw new Error(`${engine}: stored ${chunks} of ${docs.length} chunks`);
  const result: RunResult = {
    engine,
    seconds,
    chunks,
    tokens,
    tokensPerSecond: tokens / seconds,
    cpuSeconds,
    engineCpuSeconds,
    tokensPerCpuSecond: tokens / (cpuSeconds + engineCpuSeconds),
  };
  if (remote) {
    const ok = '{outcome="ok"}';
    const requests = await metric(server.client, `rag_embed_remote_request_duration_seconds_count${ok}`);
    const latency = await metric(server.client, `rag_embed_remote_request_duration_seconds_sum${ok}`);
    result.requests = requests;
    result.textsPerRequest = (await metric(server.client, "rag_embed_remote_inputs_total")) / requests;
    // The start-up probe is one of them; over hundreds of requests it does not move the mean.
    result.meanRequestMs = (latency / requests) * 1000;
    result.serverCpuMsPerRequest = (cpuSeconds / requests) * 1000;
  }
  return result;
}

async function runEngine(main: string, engine: string): Promise<RunResult> {
  if (engine === "local") {
    const server = await startServer(main, {});
    try {
      return await ingest(server, engine, false);
    } finally {
      await server.stop();
    }
  }
  let url: string;
  let model: string;
  let stopEngine: () => Promise<void>;
  let enginePid: number | null = null;
  if (engine === "self") {
    const remoteEngine = await startServer(main, {});
    enginePid = remoteEngine.child.pid ?? null;
    url = `${remoteEngine.base}/v1`;
    model = basename(MODEL_DIR);
    stopEngine = remoteEngine.stop;
  } else if (engine === "instant") {
    const instant = await startInstantEngine();
    url = instant.url;
    model = "instant";
    stopEngine = instant.close;
  } else if (engine === "infinity") {
    if (!args["infinity-url"]) throw new Error("--engines infinity needs --infinity-url");
    url = args["infinity-url"];
    model = args["infinity-model"];
    stopEngine = async () => {};
  } else {
    throw new Error(`unknown engine ${engine} (local, self, instant, infinity)`);
  }
  try {
    // EMBEDDING_MODEL (lib's default: the bench model) is the tokenizer that counts and cuts.
    const server = await startServer(main, { EMBEDDER: "remote", EMBEDDER_URL: url, EMBEDDER_MODEL: model });
    try {
      return await ingest(server, engine, true, enginePid);
    } finally {
      await server.stop();
    }
  } finally {
    await stopEngine();
  }
}

async function main(): Promise<void> {
  const engines = args.engines.split(",").filter(Boolean);
  if (args["infinity-url"] && !engines.includes("infinity")) engines.push("infinity");
  log(`building the server into the bench cache (cores: ${availableParallelism()}, model ${MODEL_DIR})`);
  const main = buildServer();
  const runs: RunResult[] = [];
  for (let round_ = 0; round_ < Number(args.runs); round_++) {
    for (const engine of engines) {
      const result = await runEngine(main, engine);
      log(
        `round ${round_ + 1}, ${engine}: ${result.chunks} chunks, ${result.tokens} tokens in ${round(result.seconds, 2)} s = ` +
          `${Math.round(result.tokensPerSecond)} tokens/s, ${Math.round(result.tokensPerCpuSecond)} tokens/CPU-s` +
          (result.requests
            ? `; ${result.requests} requests of ${round(result.textsPerRequest ?? 0)} texts, ${round(result.meanRequestMs ?? 0)} ms each, ${round(result.serverCpuMsPerRequest ?? 0)} CPU-ms of the ingest server each`
            : ""),
      );
      runs.push({ ...result, round: round_ });
    }
  }
  const rounds = Number(args.runs);
  /** Median over rounds of this engine's tokens per CPU-second over local's in the same round. */
  const perCpuVsLocal = (engine: string) => {
    const ratios = Array.from({ length: rounds }, (_, r) => {
      const of = (name: string) => runs.find((x) => x.engine === name && x.round === r);
      const [mine, local] = [of(engine), of("local")];
      return mine && local ? mine.tokensPerCpuSecond / local.tokensPerCpuSecond : Number.NaN;
    });
    return median(ratios);
  };
  const summary = engines.map((engine) => {
    const mine = runs.filter((r) => r.engine === engine);
    const pick = (f: (r: RunResult) => number | undefined) => median(mine.map((r) => f(r) ?? Number.NaN));
    return {
      engine,
      tokensPerSecond: pick((r) => r.tokensPerSecond),
      tokensPerCpuSecond: pick((r) => r.tokensPerCpuSecond),
      cpuVsLocal: perCpuVsLocal(engine),
      seconds: pick((r) => r.seconds),
      textsPerRequest: pick((r) => r.textsPerRequest),
      meanRequestMs: pick((r) => r.meanRequestMs),
      serverCpuMsPerRequest: pick((r) => r.serverCpuMsPerRequest),
    };
  });
  const local = summary.find((s) => s.engine === "local")?.tokensPerSecond;
  const show = (value: number, digits: number) => (Number.isNaN(value) ? "—" : round(value, digits));
  process.stdout.write(
    "| engine | tokens/s | vs local | tokens/CPU-s | vs local (CPU, per round) | texts/request | ms/request | server CPU-ms/request |\n" +
      "|---|---:|---:|---:|---:|---:|---:|---:|\n",
  );
  for (const s of summary) {
    const ratio = local ? round(s.tokensPerSecond / local, 2) : "—";
    process.stdout.write(
      `| ${s.engine} | ${Math.round(s.tokensPerSecond)} | ${ratio} | ${Math.round(s.tokensPerCpuSecond)} | ` +
        `${show(s.cpuVsLocal, 2)} | ${show(s.textsPerRequest, 1)} | ${show(s.meanRequestMs, 1)} | ${show(s.serverCpuMsPerRequest, 1)} |\n`,
    );
  }
  if (args.json)
    writeFileSync(args.json, JSON.stringify({ cores: availableParallelism(), runs, summary }, null, 2));
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
