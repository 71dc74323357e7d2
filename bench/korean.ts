/**
 * npm run bench -- --only korean [--runs N] [--korean-chunks N]
 *
 * Korean text on multilingual-e5-small (../shared/models/multilingual-e5-small-q4), beside the English
 * all-MiniLM-L6-v2 on the same chunks:
 * - tokenize: the worker's tokenizer work alone, in this process (the same transformers.js tokenizer
 *   and the same splitIntoWindows): "passage: " + text for every chunk, and the windows of those over
 *   the limit;
 * - embedder: the project's WorkerEmbedder on the same chunks (split policy, the server's batch
 *   defaults), wall time and CPU time of its process; the tokenizer's share is tokenize / embedder,
 *   in wall time and in CPU time (the one to read on a shared machine);
 * - e2e: the real server over HTTP (OVERFLOW_POLICY=split), chunks/s and tokens/s from the receipts,
 *   per second and per CPU-second of the server's process tree.
 * See docs/bench.md.
 */
import { basename, dirname, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { AutoTokenizer, env, type PreTrainedTokenizer } from "@huggingface/transformers";
import { settingSchema } from "../src/config/settings.js";
import { splitIntoWindows } from "../src/embedder/windows.js";
import { WorkerEmbedder } from "../src/embedder/worker-embedder.js";
import { KOREAN_PASSAGES } from "../test/fixtures/korean-retrieval.js";
import {
  cpuSeconds,
  type Doc,
  jobTokens,
  median,
  pool,
  postChunks,
  processTree,
  ROOT,
  round,
  slices,
  startServer,
  status,
  treeCpuSeconds,
} from "./lib.js";

const MODELS = {
  e5: resolve(ROOT, "../shared/models/multilingual-e5-small-q4"),
  minilm: resolve(ROOT, "../shared/models/all-MiniLM-L6-v2"),
} as const;
type ModelName = keyof typeof MODELS;

/** The profile's limits, as the server applies them (checked against /model-info in the e2e run). */
const LIMITS: Record<ModelName, { prefix: string; maxTokens: number }> = {
  e5: { prefix: "passage: ", maxTokens: 512 },
  minilm: { prefix: "", maxTokens: 256 },
};
const OVERLAP = 32;
/** The server's batch defaults, so the embedder alone batches as the server does. */
const BATCH = {
  maxBatchTokens: Number((settingSchema("batchMaxTokens") as { default: number }).default),
  maxBatchSize: Number((settingSchema("batchMaxSize") as { default: number }).default),
};

/** CPU seconds of this process's descendants (the embedder child and its threads). */
function childrenCpuSeconds(): number {
  return processTree(process.pid)
    .slice(1)
    .reduce((sum, pid) => sum + cpuSeconds(pid), 0);
}

const log = (msg: string) => process.stderr.write(`[bench:korean] ${msg}\n`);

/**
 * Korean chunks of realistic lengths: sections of the fixture's leaflets, clauses and manuals run
 * together, 200–1,600 characters, every tenth a long 3,000–4,400-character document; deterministic.
 */
export function koreanChunks(count: number): Doc[] {
  const paragraphs = KOREAN_PASSAGES.map((p) => p.text);
  let seed = 12;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  return Array.from({ length: count }, (_, i) => {
    const length = i % 10 === 9 ? 3000 + Math.floor(random() * 1400) : 200 + Math.floor(random() * 1400);
    let text = `문서 ${i + 1}.`;
    for (let p = Math.floor(random() * paragraphs.length); text.length < length; p++) {
      text += `\n\n${paragraphs[p % paragraphs.length]}`;
    }
    return { id: `ko-${i}`, text: text.slice(0, length).trim() };
  });
}

async function loadTokenizer(model: ModelName): Promise<PreTrainedTokenizer> {
  env.allowLocalModels = true;
  env.allowRemoteModels = false;
  env.localModelPath = dirname(MODELS[model]);
  return AutoTokenizer.from_pretrained(basename(MODELS[model]));
}

/** What the worker's tokenizer does for these texts, timed: tokens per text and windows of long ones. */
function tokenize(tokenizer: PreTrainedTokenizer, model: ModelName, docs: Doc[]) {
  const { prefix, maxTokens } = LIMITS[model];
  const prefixTokens = prefix ? tokenizer.encode(prefix, { add_special_tokens: false }).length : 0;
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  let tokens = 0;
  let windows = 0;
  for (const doc of docs) {
    const ids = tokenizer.encode(prefix + doc.text);
    tokens += ids.length;
    if (ids.length <= maxTokens) {
      windows += 1;
      continue;
    }
    const split = splitIntoWindows(
      doc.text,
      {
        piece: (piece) => tokenizer.encode(piece, { add_special_tokens: false }).length,
        window: (text) => tokenizer.encode(prefix + text).length,
      },
      { maxTokens, fixedTokens: 2 + prefixTokens, overlapTokens: OVERLAP },
    );
    windows += split.length;
  }
  const cpu = process.cpuUsage(cpu0);
  return {
    seconds: (performance.now() - started) / 1000,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    tokens,
    windows,
  };
}

/** The project's embedder alone on the same texts, split policy, in one call (sorted, batched). */
async function embed(model: ModelName, docs: Doc[]) {
  const embedder = new WorkerEmbedder({
    model: MODELS[model],
    dtype: "q8",
    threads: 2,
    sessions: 2,
    ...BATCH,
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
      docs.map(() => ({ policy: "split" as const, overlapTokens: OVERLAP })),
    );
    const seconds = (performance.now() - started) / 1000;
    const cpu = childrenCpuSeconds() - cpu0;
    const embedded = result.windows.reduce(
      (sum, windows, i) =>
        sum + (windows ? windows.reduce((s, w) => s + w.tokens, 0) : (result.tokens[i] ?? 0)),
      0,
    );
    return { seconds, cpuSeconds: cpu, embeddedTokens: embedded };
  } finally {
    await embedder.close();
  }
}

/** The real server over HTTP, default settings but the model and OVERFLOW_POLICY=split. */
async function e2e(main: string, model: ModelName, docs: Doc[]) {
  const server = await startServer(main, { EMBEDDING_MODEL: MODELS[model], OVERFLOW_POLICY: "split" });
  const pid = server.child.pid ?? 0;
  try {
    const cpu0 = treeCpuSeconds(pid);
    const started = performance.now();
    const posted = await pool(slices(docs, 50), 4, (chunks) => postChunks(server.client, "korean", chunks));
    const bad = posted.find((p) => p.status !== 202);
    if (bad) throw new Error(`korean e2e: POST answered ${bad.status}`);
    for (;;) {
      const s = await status(server.client);
      if (s.queue.pending_chunks === 0 && s.queue.running_chunks === 0) break;
      await sleep(50);
    }
    const seconds = (performance.now() - started) / 1000;
    const cpu = treeCpuSeconds(pid) - cpu0;
    let tokens = 0;
    let stored = 0;
    for (const p of posted) {
      const t = await jobTokens(server.client, p.jobId ?? "");
      tokens += t.tokens;
      stored += t.stored;
    }
    if (stored !== docs.length) throw new Error(`korean e2e: ${stored} of ${docs.length} chunks stored`);
    return { seconds, cpuSeconds: cpu, tokens };
  } finally {
    await server.stop();
  }
}

export interface KoreanBenchOptions {
  /** The compiled server's cli/main.js (bench/lib.ts buildServer). */
  main: string;
  runs: number;
  chunks: number;
}

export async function koreanBench(options: KoreanBenchOptions) {
  const docs = koreanChunks(options.chunks);
  const chars = docs.reduce((sum, d) => sum + d.text.length, 0);
  log(`${docs.length} Korean chunks, ${chars} characters, ${options.runs} runs`);
  const perModel: Record<string, unknown> = {};
  for (const model of ["e5", "minilm"] as const) {
    const tokenizer = await loadTokenizer(model);
    const rounds: Array<Record<string, number>> = [];
    for (let r = 0; r < options.runs; r++) {
      const t = tokenize(tokenizer, model, docs);
      const e = await embed(model, docs);
      const h = await e2e(options.main, model, docs);
      const figures = {
        tokens: t.tokens,
        windows: t.windows,
        tokenize_s: round3(t.seconds),
        tokenizer_tokens_per_s: Math.round(t.tokens / t.seconds),
        embedder_s: round3(e.seconds),
        embedder_tokens_per_s: Math.round(e.embeddedTokens / e.seconds),
        embedder_tokens_per_cpu_s: Math.round(e.embeddedTokens / e.cpuSeconds),
        tokenizer_share: round3(t.seconds / e.seconds),
        // CPU rather than wall time: holds when other processes share the cores.
        tokenizer_cpu_share: round3(t.cpuSeconds / e.cpuSeconds),
        e2e_s: round3(h.seconds),
        e2e_chunks_per_s: round(docs.length / h.seconds, 2),
        e2e_tokens_per_s: Math.round(h.tokens / h.seconds),
        e2e_tokens_per_cpu_s: Math.round(h.tokens / h.cpuSeconds),
        e2e_chunks_per_cpu_s: round(docs.length / h.cpuSeconds, 2),
      };
      log(`${model} round ${r + 1}: ${JSON.stringify(figures)}`);
      rounds.push(figures);
    }
    const med = (key: string) => median(rounds.map((x) => x[key] ?? Number.NaN));
    perModel[model] = {
      model: MODELS[model],
      tokens: rounds[0]?.tokens,
      windows: rounds[0]?.windows,
      tokens_per_char: round(Number(rounds[0]?.tokens) / chars, 3),
      tokenizer_share: med("tokenizer_share"),
      tokenizer_cpu_share: med("tokenizer_cpu_share"),
      tokenizer_tokens_per_s: med("tokenizer_tokens_per_s"),
      embedder_tokens_per_s: med("embedder_tokens_per_s"),
      embedder_tokens_per_cpu_s: med("embedder_tokens_per_cpu_s"),
      e2e_chunks_per_s: med("e2e_chunks_per_s"),
      e2e_tokens_per_s: med("e2e_tokens_per_s"),
      e2e_tokens_per_cpu_s: med("e2e_tokens_per_cpu_s"),
      e2e_chunks_per_cpu_s: med("e2e_chunks_per_cpu_s"),
      rounds,
    };
  }
  return { chunks: docs.length, characters: chars, overlap_tokens: OVERLAP, models: perModel };
}

function round3(value: number): number {
  return round(value, 3);
}
