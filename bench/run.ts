/**
 * npm run bench [-- --json FILE] [--docs N] [--runs N] [--only PHASES] [--korean-chunks N]
 *                 [--progress-chunks N] [--progress-before PATH_TO_CLI_MAIN_JS]
 *                 [--server-env KEY=VALUE ...] [--build PATH_TO_CLI_MAIN_JS]
 *
 * Throughput in tokens per CPU-second (and per second) of the server end to end, of its embedder
 * alone (the Node ceiling) and of Python onnxruntime on the same file (the reference), on SciFact and
 * on a mixed-length set; /v1/embeddings; the e5 path on Korean text (tokenizer share, 4-bit against
 * int8); admission latency under load; memory. Phases: ceiling, reference, baseline, e2e, openai,
 * accept, rss, e5, progress (how soon and how smoothly a large job's progress shows), korean (the
 * server ingesting Korean chunks on e5 beside MiniLM) and batch (a batch-shape sweep, only on
 * request). See docs/bench.md.
 */
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { basename, dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { AutoTokenizer, env, pipeline } from "@huggingface/transformers";
import type { RagEmbedClient } from "../src/client/index.js";
import { settingSchema } from "../src/config/settings.js";
import { WorkerEmbedder } from "../src/embedder/worker-embedder.js";
import { koreanChunks, mixedLengths } from "./corpora.js";
import { koreanBench } from "./korean.js";
import {
  buildServer,
  CACHE_DIR,
  cpuSeconds,
  type Doc,
  jobTokens,
  loadCorpus,
  MODEL_DIR,
  median,
  percentile,
  pool,
  postChunks,
  processTree,
  procMemMb,
  ROOT,
  round,
  slices,
  startServer,
  status,
  treeCpuSeconds,
} from "./lib.js";
import { progressBench } from "./progress.js";
import { ensurePython, konlpyCorpusDir, type ReferenceRun, runPython } from "./python.js";

const { values: args } = parseArgs({
  options: {
    json: { type: "string" },
    docs: { type: "string", default: "600" },
    runs: { type: "string", default: "3" },
    only: { type: "string", default: "ceiling,reference,baseline,e2e,openai,accept,rss,e5,progress" },
    "server-env": { type: "string", multiple: true, default: [] },
    build: { type: "string" },
    "rss-chunks": { type: "string", default: "200000" },
    "korean-chunks": { type: "string", default: "400" },
    "progress-chunks": { type: "string", default: "3000" },
    "progress-before": { type: "string" },
  },
});

const DOCS = Number(args.docs);
const RUNS = Number(args.runs);
const PHASES = new Set(args.only.split(","));
const THREADS = availableParallelism();
const MAX_TOKENS = 256;
const E5_MODEL_DIR = join(ROOT, process.env.BENCH_E5_MODEL ?? "../shared/models/multilingual-e5-small-q4");
/** The server's batch defaults, so the ceiling batches as the server does. */
const BATCH = {
  maxBatchTokens: Number((settingSchema("batchMaxTokens") as { default: number }).default),
  maxBatchSize: Number((settingSchema("batchMaxSize") as { default: number }).default),
};
const serverEnv: Record<string, string> = Object.fromEntries(
  args["server-env"].map((kv) => {
    const at = kv.indexOf("=");
    return [kv.slice(0, at), kv.slice(at + 1)];
  }),
);

const corpus = loadCorpus();
const CORPORA: Record<string, Doc[]> = {
  scifact: corpus.slice(0, DOCS),
  mixed: mixedLengths(corpus.slice(0, DOCS)),
};
const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

interface Run {
  tokens: number;
  seconds: number;
  cpuSeconds: number;
  tokensPerS: number;
  tokensPerCpuS: number;
}
const rate = (tokens: number, seconds: number, cpu: number): Run => ({
  tokens,
  seconds: round(seconds, 2),
  cpuSeconds: round(cpu, 2),
  tokensPerS: round(tokens / seconds, 0),
  tokensPerCpuS: round(tokens / cpu, 0),
});

/** CPU seconds of this process's descendants (the embedder child and its threads), not of the bench. */
function childrenCpuSeconds(): number {
  return processTree(process.pid)
    .slice(1)
    .reduce((sum, pid) => sum + cpuSeconds(pid), 0);
}

// ── ceiling: the project's WorkerEmbedder alone, the whole set in one call (sorted globally) ────────
interface EmbedderSetting {
  model: string;
  maxBatchTokens: number;
  maxBatchSize: number;
  sessions: number;
}

async function ceilingRun(docs: Doc[], setting: EmbedderSetting): Promise<Run> {
  const embedder = new WorkerEmbedder({
    model: setting.model,
    dtype: "q8",
    threads: THREADS,
    sessions: setting.sessions,
    maxBatchTokens: setting.maxBatchTokens,
    maxBatchSize: setting.maxBatchSize,
    cacheDir: "/nonexistent",
    profileOverrides: {},
  });
  try {
    await embedder.load();
    const cpu0 = childrenCpuSeconds();
    const started = performance.now();
    const result = await embedder.embed(
      docs.map((d) => d.text),
      "passage",
      docs.map(() => ({ policy: "truncate" as const, overlapTokens: 0 })),
    );
    const seconds = (performance.now() - started) / 1000;
    const tokens = result.tokens.reduce((a, b) => a + b, 0);
    return rate(tokens, seconds, childrenCpuSeconds() - cpu0);
  } finally {
    await embedder.close();
  }
}

// ── reference: Python onnxruntime on the same file and texts, length-sorted batches of 8 ───────────
function referenceRun(python: string, docs: Doc[], modelDir: string, file = "onnx/model_quantized.onnx") {
  const e5 = modelDir === E5_MODEL_DIR;
  return runPython<ReferenceRun>(python, "reference.py", {
    texts: docs.map((d) => d.text),
    model_file: join(modelDir, file),
    tokenizer_file: join(modelDir, "tokenizer.json"),
    max_tokens: e5 ? 512 : MAX_TOKENS,
    prefix: e5 ? "passage: " : "",
    pad_id: e5 ? 1 : 0,
    batch_size: 8,
    threads: THREADS,
  });
}
const referenceAsRun = (r: ReferenceRun): Run => rate(r.tokens, r.seconds, r.cpu_seconds);

// ── baseline: transformers.js pipeline, arrival order, 32 at a time, main thread ────────────────────
async function baselineSetup(docs: Doc[]) {
  env.allowLocalModels = true;
  env.allowRemoteModels = false;
  env.localModelPath = dirname(MODEL_DIR);
  const extractor = await pipeline("feature-extraction", basename(MODEL_DIR), { dtype: "q8" });
  // What `truncation: true, max_length: 256` means for this model: the pipeline truncates to
  // model_max_length, a read-only view of the tokenizer config since transformers.js 4.
  Reflect.set(Reflect.get(extractor.tokenizer, "_tokenizerConfig") as object, "model_max_length", MAX_TOKENS);
  const tokens = docs.reduce(
    (sum, d) => sum + Math.min(MAX_TOKENS, extractor.tokenizer.encode(d.text).length),
    0,
  );
  await extractor(["warm up"], { pooling: "mean", normalize: true });
  return { extractor, tokens, docs };
}

async function baselineRun(setup: Awaited<ReturnType<typeof baselineSetup>>): Promise<Run> {
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  for (const batch of slices(setup.docs, 32)) {
    const out = await setup.extractor(
      batch.map((d) => d.text),
      { pooling: "mean", normalize: true },
    );
    out.dispose();
  }
  const cpu = process.cpuUsage(cpu0);
  return rate(setup.tokens, (performance.now() - started) / 1000, (cpu.user + cpu.system) / 1e6);
}

// ── e2e: the real server over HTTP ──────────────────────────────────────────────────────────────────
async function waitDrained(client: RagEmbedClient, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await status(client);
    if (s.queue.pending_chunks === 0 && s.queue.running_chunks === 0) return;
    if (Date.now() > deadline) throw new Error("e2e: queue did not drain in time");
    await sleep(25);
  }
}

async function e2eRun(main: string, docs: Doc[], memory: number[]): Promise<Run & { stored: number }> {
  const server = await startServer(main, serverEnv);
  const pid = server.child.pid ?? 0;
  try {
    const requests = slices(docs, 100);
    const cpu0 = treeCpuSeconds(pid);
    const started = performance.now();
    const posted = await pool(requests, 4, (chunks) => postChunks(server.client, "bench", chunks));
    const bad = posted.find((p) => p.status !== 202);
    if (bad) throw new Error(`e2e: POST answered ${bad.status}`);
    await waitDrained(server.client, 600_000);
    const seconds = (performance.now() - started) / 1000;
    const cpu = treeCpuSeconds(pid) - cpu0;
    let tokens = 0;
    let stored = 0;
    for (const p of posted) {
      const t = await jobTokens(server.client, p.jobId ?? "");
      tokens += t.tokens;
      stored += t.stored;
    }
    if (stored !== docs.length) throw new Error(`e2e: ${stored} of ${docs.length} chunks stored`);
    memory.push(server.memory.peakTreeRssMb);
    return { ...rate(tokens, seconds, cpu), stored };
  } finally {
    await server.stop();
    memory.push([...server.memory.hwmMb.values()].reduce((a, b) => a + b, 0));
  }
}

// ── /v1/embeddings: requests of 100 texts in the caller's (unsorted) order, 2 in flight ─────────────
async function openaiRun(main: string, docs: Doc[], memory: number[]): Promise<Run> {
  const server = await startServer(main, serverEnv);
  const pid = server.child.pid ?? 0;
  try {
    const cpu0 = treeCpuSeconds(pid);
    const started = performance.now();
    const tokens = await pool(slices(docs, 100), 2, async (batch) => {
      const body = await server.client.embed(
        batch.map((d) => d.text),
        { model: MODEL_DIR, overflow: "truncate" },
      );
      if (body.data.length !== batch.length) throw new Error("openai: wrong number of embeddings");
      return body.usage.prompt_tokens;
    });
    const seconds = (performance.now() - started) / 1000;
    memory.push(server.memory.peakTreeRssMb);
    return rate(
      tokens.reduce((a, b) => a + b, 0),
      seconds,
      treeCpuSeconds(pid) - cpu0,
    );
  } finally {
    await server.stop();
  }
}

// ── e5 on Korean: tokenizer share, 4-bit MatMulNBits against int8 from the same weights ─────────────
/** A model directory in the bench cache: the e5 tokenizer and config, and another .onnx as q8. */
function variantDir(name: string, onnxFile: string): string {
  const dir = join(CACHE_DIR, "models", name);
  mkdirSync(join(dir, "onnx"), { recursive: true });
  for (const file of ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]) {
    if (!existsSync(join(dir, file))) symlinkSync(join(E5_MODEL_DIR, file), join(dir, file));
  }
  const target = join(dir, "onnx", "model_quantized.onnx");
  if (!existsSync(target)) symlinkSync(onnxFile, target);
  return dir;
}

async function tokenizerCpuSeconds(modelDir: string, docs: Doc[], prefix: string): Promise<number> {
  env.allowLocalModels = true;
  env.allowRemoteModels = false;
  env.localModelPath = dirname(modelDir);
  const tokenizer = await AutoTokenizer.from_pretrained(basename(modelDir));
  tokenizer.encode("warm up");
  const cpu0 = process.cpuUsage();
  for (const doc of docs) tokenizer.encode(prefix + doc.text);
  const cpu = process.cpuUsage(cpu0);
  return (cpu.user + cpu.system) / 1e6;
}

async function e5Phase(python: string) {
  const docs = koreanChunks(konlpyCorpusDir(python), Number(args["korean-chunks"]));
  const built = join(CACHE_DIR, "e5-int8");
  if (!existsSync(join(built, "model_int8_u8.onnx"))) {
    log(`building int8 variants of the e5 file in ${built}`);
    runPython(python, "e5_int8.py", [join(E5_MODEL_DIR, "onnx", "model_quantized.onnx"), built]);
  }
  const variants = {
    q4: E5_MODEL_DIR,
    int8_s8: variantDir("e5-int8-s8", join(built, "model_int8_s8.onnx")),
    int8_u8: variantDir("e5-int8-u8", join(built, "model_int8_u8.onnx")),
  };
  const setting = { ...BATCH, sessions: THREADS };
  const rounds: Array<Record<string, { node: Run; reference: Run }>> = [];
  for (let r = 0; r < RUNS; r++) {
    const round: Record<string, { node: Run; reference: Run }> = {};
    for (const [name, dir] of Object.entries(variants)) {
      round[name] = {
        node: await ceilingRun(docs, { ...setting, model: dir }),
        reference: referenceAsRun(referenceRun(python, docs, dir)),
      };
      log(`e5 round ${r + 1} ${name}: node ${JSON.stringify(round[name]?.node)}`);
    }
    rounds.push(round);
  }
  const tokenizeCpu = await tokenizerCpuSeconds(E5_MODEL_DIR, docs, "passage: ");
  const agreement = runPython<Record<string, { mean: number; min: number }>>(python, "reference.py", {
    ...referenceConfig(docs),
    compare: {
      q4: join(E5_MODEL_DIR, "onnx", "model_quantized.onnx"),
      int8_s8: join(built, "model_int8_s8.onnx"),
      int8_u8: join(built, "model_int8_u8.onnx"),
    },
  });
  const summary = Object.fromEntries(
    Object.keys(variants).map((name) => {
      const pick = (f: (x: { node: Run; reference: Run }) => number) =>
        median(rounds.map((round) => f(round[name] as { node: Run; reference: Run })));
      return [
        name,
        {
          tokens_per_s: pick((x) => x.node.tokensPerS),
          tokens_per_cpu_s: pick((x) => x.node.tokensPerCpuS),
          reference_tokens_per_cpu_s: pick((x) => x.reference.tokensPerCpuS),
          cosine_to_q4: agreement[name] ?? null,
        },
      ];
    }),
  );
  const q4Cpu = median(rounds.map((round) => round.q4?.node.cpuSeconds ?? Number.NaN));
  return {
    texts: docs.length,
    tokens: rounds[0]?.q4?.node.tokens ?? null,
    tokenizer_cpu_seconds: round(tokenizeCpu, 3),
    tokenizer_share: round(tokenizeCpu / q4Cpu, 4),
    variants: summary,
    rounds,
  };
}

function referenceConfig(docs: Doc[]) {
  return {
    texts: docs.map((d) => d.text),
    tokenizer_file: join(E5_MODEL_DIR, "tokenizer.json"),
    max_tokens: 512,
    prefix: "passage: ",
    pad_id: 1,
    batch_size: 8,
    threads: THREADS,
  };
}

// ── batch shape: texts and padded tokens per forward pass, by the Node ceiling ──────────────────────
const BATCH_GRID = [
  { maxBatchSize: 8, maxBatchTokens: 2048 },
  { maxBatchSize: 4, maxBatchTokens: 1024 },
  { maxBatchSize: 32, maxBatchTokens: 1024 },
  { maxBatchSize: 8, maxBatchTokens: 512 },
  { maxBatchSize: 16, maxBatchTokens: 512 },
  { maxBatchSize: 32, maxBatchTokens: 512 },
  { maxBatchSize: 64, maxBatchTokens: 512 },
  { maxBatchSize: 32, maxBatchTokens: 256 },
];

async function batchPhase(python: string | null) {
  const sets: Array<[string, string, Doc[]]> = [
    ["minilm-scifact", MODEL_DIR, CORPORA.scifact ?? []],
    ["minilm-mixed", MODEL_DIR, CORPORA.mixed ?? []],
  ];
  if (python) {
    sets.push(["e5-korean", E5_MODEL_DIR, koreanChunks(konlpyCorpusDir(python), 200)]);
  }
  const out: Record<string, Array<{ maxBatchSize: number; maxBatchTokens: number; runs: Run[] }>> = {};
  for (const [name, model, docs] of sets) {
    const rows = BATCH_GRID.map((g) => ({ ...g, runs: [] as Run[] }));
    for (let r = 0; r < RUNS; r++) {
      for (const row of rows) {
        row.runs.push(await ceilingRun(docs, { model, sessions: THREADS, ...row }));
        log(
          `batch ${name} ${row.maxBatchSize}/${row.maxBatchTokens}: ${row.runs.at(-1)?.tokensPerCpuS} tok/CPU-s`,
        );
      }
    }
    out[name] = rows;
  }
  return Object.fromEntries(
    Object.entries(out).map(([name, rows]) => [
      name,
      rows.map(({ runs, ...g }) => ({
        ...g,
        tokens_per_cpu_s: median(runs.map((x) => x.tokensPerCpuS)),
        tokens_per_s: median(runs.map((x) => x.tokensPerS)),
        runs,
      })),
    ]),
  );
}

// ── admission latency while the embedder is busy ────────────────────────────────────────────────────
function cycled(count: number, prefix: string): Doc[] {
  return Array.from({ length: count }, (_, i) => {
    const doc = corpus[i % corpus.length] as Doc;
    return { id: `${prefix}-${i}-${doc.id}`, text: doc.text };
  });
}

async function accept(main: string, memory: number[]) {
  const server = await startServer(main, serverEnv);
  try {
    // Enough queued work to keep the embedder busy for the whole phase.
    for (const chunks of slices(cycled(3000, "prefill"), 500)) {
      const p = await postChunks(server.client, "bench", chunks);
      if (p.status !== 202) throw new Error(`accept: prefill answered ${p.status}`);
    }
    while ((await status(server.client)).queue.running_chunks === 0) await sleep(20);
    const latencies: number[] = [];
    for (const chunks of slices(cycled(20_000, "accept"), 100)) {
      const p = await postChunks(server.client, "bench", chunks);
      if (p.status !== 202) throw new Error(`accept: POST answered ${p.status}`);
      latencies.push(p.ms);
    }
    const s = await status(server.client);
    if (s.queue.running_chunks === 0) log("accept: warning, embedder went idle during the phase");
    memory.push(server.memory.peakTreeRssMb);
    return {
      p50: round(percentile(latencies, 50), 1),
      p99: round(percentile(latencies, 99), 1),
      max: round(Math.max(...latencies), 1),
      posts: latencies.length,
      tokensPerSWhileAccepting: s.throughput.tokens_per_second,
    };
  } finally {
    await server.stop();
    memory.push([...server.memory.hwmMb.values()].reduce((a, b) => a + b, 0));
  }
}

// ── memory with 200k queued ─────────────────────────────────────────────────────────────────────────
async function rss200k(main: string) {
  const total = Number(args["rss-chunks"]);
  const server = await startServer(main, {
    ...serverEnv,
    EMBEDDING_MAX_RATE: "0.001",
    MAX_QUEUE_SIZE: String(Math.max(total, 250_000)),
  });
  try {
    const started = performance.now();
    const docs = cycled(total, "q");
    const posted = await pool(slices(docs, 1000), 2, (chunks) => postChunks(server.client, "bench", chunks));
    const bad = posted.find((p) => p.status !== 202);
    if (bad) throw new Error(`rss: POST answered ${bad.status}`);
    const enqueueSeconds = (performance.now() - started) / 1000;
    await sleep(2000);
    const s = await status(server.client);
    const pid = server.child.pid ?? 0;
    const tree = processTree(pid);
    const serverRss = procMemMb(pid, "VmRSS");
    const treeRss = tree.reduce((sum, p) => sum + procMemMb(p, "VmRSS"), 0);
    return {
      queued: s.queue.pending_chunks + s.queue.running_chunks,
      serverRssMb: round(serverRss, 0),
      treeRssMb: round(treeRss, 0),
      serverHwmMb: round(procMemMb(pid, "VmHWM"), 0),
      enqueueChunksPerS: round(total / enqueueSeconds, 0),
      postP99Ms: round(
        percentile(
          posted.map((p) => p.ms),
          99,
        ),
        1,
      ),
    };
  } finally {
    await server.stop();
  }
}

// ── main ────────────────────────────────────────────────────────────────────────────────────────────
type Round = Partial<Record<"ceiling" | "reference" | "baseline" | "e2e" | "openai", Run>>;

async function main() {
  const benchStarted = performance.now();
  log(`${DOCS} SciFact docs, ${RUNS} runs, ${THREADS} threads, phases ${[...PHASES].join(",")}`);
  const needServer = ["e2e", "openai", "accept", "rss", "korean", "progress"].some((p) => PHASES.has(p));
  const serverMain = needServer ? (args.build ?? buildServer()) : "";
  const needPython = ["reference", "e5", "batch"].some((p) => PHASES.has(p));
  const python = needPython ? ensurePython(log) : null;
  const memory: number[] = [];
  const setting = { ...BATCH, sessions: THREADS, model: MODEL_DIR };

  // Rounds interleave the figures, so load from other tenants of this shared machine hits them alike;
  // each ratio is also taken within a round.
  const base = PHASES.has("baseline") ? await baselineSetup(CORPORA.scifact ?? []) : null;
  const rounds: Array<Record<string, Round>> = [];
  for (let r = 0; r < RUNS; r++) {
    const round: Record<string, Round> = {};
    for (const [name, docs] of Object.entries(CORPORA)) {
      const figures: Round = {};
      if (PHASES.has("ceiling")) figures.ceiling = await ceilingRun(docs, setting);
      if (python && PHASES.has("reference"))
        figures.reference = referenceAsRun(referenceRun(python, docs, MODEL_DIR));
      if (base && name === "scifact") figures.baseline = await baselineRun(base);
      if (PHASES.has("e2e")) figures.e2e = await e2eRun(serverMain, docs, memory);
      if (PHASES.has("openai") && name === "mixed")
        figures.openai = await openaiRun(serverMain, docs, memory);
      log(
        `round ${r + 1} ${name}: ${Object.entries(figures)
          .map(([k, v]) => `${k} ${v.tokensPerCpuS} tok/CPU-s ${v.tokensPerS} tok/s`)
          .join(", ")}`,
      );
      round[name] = figures;
    }
    rounds.push(round);
  }
  await base?.extractor.dispose();

  const figure = (corpusName: string, key: keyof Round, field: keyof Run) => {
    const values = rounds
      .map((r) => r[corpusName]?.[key]?.[field])
      .filter((v): v is number => v !== undefined);
    return values.length ? median(values) : null;
  };
  /** Median over rounds of the ratio within each round. */
  const perRound = (corpusName: string, x: keyof Round, y: keyof Round) => {
    const values = rounds
      .map((r) => {
        const [a, b] = [r[corpusName]?.[x]?.tokensPerCpuS, r[corpusName]?.[y]?.tokensPerCpuS];
        return a !== undefined && b !== undefined && b > 0 ? a / b : undefined;
      })
      .filter((v): v is number => v !== undefined);
    return values.length ? round(median(values), 3) : null;
  };
  const corpusFigures = (name: string) => ({
    ceiling_tokens_per_cpu_s: figure(name, "ceiling", "tokensPerCpuS"),
    reference_tokens_per_cpu_s: figure(name, "reference", "tokensPerCpuS"),
    e2e_tokens_per_cpu_s: figure(name, "e2e", "tokensPerCpuS"),
    openai_tokens_per_cpu_s: figure(name, "openai", "tokensPerCpuS"),
    baseline_tokens_per_cpu_s: figure(name, "baseline", "tokensPerCpuS"),
    ceiling_tokens_per_s: figure(name, "ceiling", "tokensPerS"),
    reference_tokens_per_s: figure(name, "reference", "tokensPerS"),
    e2e_tokens_per_s: figure(name, "e2e", "tokensPerS"),
    openai_tokens_per_s: figure(name, "openai", "tokensPerS"),
    baseline_tokens_per_s: figure(name, "baseline", "tokensPerS"),
    e2e_over_reference: perRound(name, "e2e", "reference"),
    e2e_over_ceiling: perRound(name, "e2e", "ceiling"),
    openai_over_ceiling: perRound(name, "openai", "ceiling"),
    ceiling_over_reference: perRound(name, "ceiling", "reference"),
    e2e_over_baseline: perRound(name, "e2e", "baseline"),
  });
  const scifact = corpusFigures("scifact");
  const mixed = corpusFigures("mixed");
  const a = PHASES.has("accept") ? await accept(serverMain, memory) : null;
  const m = PHASES.has("rss") ? await rss200k(serverMain) : null;
  const p = PHASES.has("progress")
    ? await progressBench({
        builds: {
          ...(args["progress-before"] ? { before: args["progress-before"] } : {}),
          this: serverMain,
        },
        env: serverEnv,
        corpus,
        chunks: Number(args["progress-chunks"]),
        runs: RUNS,
      })
    : null;
  const k = PHASES.has("korean")
    ? await koreanBench({ main: serverMain, runs: RUNS, chunks: Number(args["korean-chunks"]) })
    : null;
  const e5 = python && PHASES.has("e5") ? await e5Phase(python) : null;
  const batch = PHASES.has("batch") ? await batchPhase(python) : null;

  const result = {
    e2e_tokens_per_cpu_s: scifact.e2e_tokens_per_cpu_s,
    reference_tokens_per_cpu_s: scifact.reference_tokens_per_cpu_s,
    ceiling_tokens_per_cpu_s: scifact.ceiling_tokens_per_cpu_s,
    e2e_over_reference: scifact.e2e_over_reference,
    mixed_e2e_over_reference: mixed.e2e_over_reference,
    openai_over_ceiling_mixed: mixed.openai_over_ceiling,
    accept_p50_ms: a?.p50 ?? null,
    accept_p99_ms: a?.p99 ?? null,
    peak_rss_mb: memory.length ? round(Math.max(...memory), 0) : null,
    rss_mb_200k_queued: m?.serverRssMb ?? null,
    first_stored_ms: p?.this?.first_stored_ms ?? null,
    largest_queue_step: p?.this?.largest_step ?? null,
    corpora: { scifact, mixed },
    e5,
    batch,
    settings: {
      model: MODEL_DIR,
      e5_model: E5_MODEL_DIR,
      docs: DOCS,
      runs: RUNS,
      threads: THREADS,
      max_tokens: MAX_TOKENS,
      batch: BATCH,
      server_env: { OVERFLOW_POLICY: "truncate", LOG_LEVEL: "warn", ...serverEnv },
      server_build: serverMain || null,
      seconds: round((performance.now() - benchStarted) / 1000, 0),
    },
    details: { rounds, accept: a, rss_200k: m, korean: k, progress: p },
  };

  const rows: Array<[string, unknown]> = [];
  for (const [name, f] of Object.entries({ scifact, mixed })) {
    rows.push(
      [
        `${name}: e2e tokens/CPU-s (tokens/s)`,
        `${f.e2e_tokens_per_cpu_s ?? "—"} (${f.e2e_tokens_per_s ?? "—"})`,
      ],
      [`${name}: Node ceiling`, `${f.ceiling_tokens_per_cpu_s ?? "—"} (${f.ceiling_tokens_per_s ?? "—"})`],
      [
        `${name}: Python reference`,
        `${f.reference_tokens_per_cpu_s ?? "—"} (${f.reference_tokens_per_s ?? "—"})`,
      ],
      [`${name}: e2e / reference (target ≥ 1.1)`, f.e2e_over_reference],
      [`${name}: e2e / Node ceiling`, f.e2e_over_ceiling],
    );
  }
  rows.push(
    ["scifact: transformers.js baseline", scifact.baseline_tokens_per_cpu_s],
    ["mixed: /v1/embeddings tokens/CPU-s", mixed.openai_tokens_per_cpu_s],
    ["mixed: /v1/embeddings / ceiling (≥ 0.95)", mixed.openai_over_ceiling],
    ["accept_p50_ms", result.accept_p50_ms],
    ["accept_p99_ms (target < 50)", result.accept_p99_ms],
    ["peak_rss_mb (server + embedder, ≤ 512)", result.peak_rss_mb],
    ["rss_mb_200k_queued (target < 1536)", result.rss_mb_200k_queued],
    ["first_stored_ms (first accepted → first stored)", result.first_stored_ms],
    ["largest step of current_task_queue_size", result.largest_queue_step],
  );
  if (e5) {
    rows.push(["e5 Korean tokenizer share", e5.tokenizer_share]);
    for (const [name, v] of Object.entries(e5.variants)) {
      rows.push([`e5 ${name} tokens/CPU-s (tokens/s)`, `${v.tokens_per_cpu_s} (${v.tokens_per_s})`]);
      rows.push([`e5 ${name} reference tokens/CPU-s`, v.reference_tokens_per_cpu_s]);
      rows.push([
        `e5 ${name} cosine to q4 (mean/min)`,
        v.cosine_to_q4 ? `${v.cosine_to_q4.mean}/${v.cosine_to_q4.min}` : "—",
      ]);
    }
  }
  process.stdout.write(`\n${"figure".padEnd(46)} value\n${"-".repeat(64)}\n`);
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(46)} ${v ?? "—"}\n`);
  if (batch)
    process.stdout.write(`batch: ${JSON.stringify(batch, (k, v) => (k === "runs" ? undefined : v))}\n`);
  if (m) process.stdout.write(`200k queued: ${JSON.stringify(m)}\n`);
  if (a) process.stdout.write(`accept: ${JSON.stringify(a)}\n`);
  if (p)
    process.stdout.write(`progress: ${JSON.stringify(p, (key, v) => (key === "runs" ? undefined : v))}\n`);
  if (k)
    process.stdout.write(`korean: ${JSON.stringify(k, (key, v) => (key === "rounds" ? undefined : v))}\n`);
  process.stdout.write(`took ${result.settings.seconds}s\n`);
  if (args.json) writeFileSync(args.json, `${JSON.stringify(result, null, 2)}\n`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
