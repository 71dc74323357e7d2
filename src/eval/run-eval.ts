import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { RagEmbedClient } from "../client/index.js";
import type { JobCounts } from "../client/types.js";
import { launchServer, PACKAGE_ROOT } from "../launcher/server-launcher.js";
import { documentText, readCorpus, readQrels, readQueries } from "./beir.js";
import { evaluateRun, type Qrels, type Run } from "./retrieval-metrics.js";

export const EVAL_COLLECTION = "eval";
/** The store's largest top_k: a search that large lists every stored point of a small corpus. */
const MAX_TOP_K = 10_000;

export interface EvalOptions {
  /** BEIR-layout directory. */
  dataset: string;
  /** Model id or local directory; default: the server's default model. */
  model?: string;
  /** Port for the server (default 0: any free port). */
  port?: number;
  /** Only the first N corpus documents. */
  limitDocs?: number;
  /** Only the first N test queries (in qrels order). */
  limitQueries?: number;
  /** Chunks per ingest request. */
  batchSize?: number;
  /** Searches in flight at once. */
  concurrency?: number;
  /** Hits per query (recall is computed at this depth). */
  topK?: number;
  split?: string;
  /** Extra environment for the server (tests pin threads, etc.). */
  serverEnv?: Record<string, string | undefined>;
  /** Progress lines (stderr by default). */
  log?: (line: string) => void;
}

export interface PerQueryResult {
  query_id: string;
  hits: number;
  latency_ms: number;
  ndcg_at_10: number;
  recall_at_100: number;
}

export interface EvalResult {
  dataset: string;
  dataset_dir: string;
  split: string;
  model: string;
  model_info: Record<string, unknown>;
  docs: number;
  stored_points: number | null;
  truncated_docs: number;
  skipped_empty_docs: number;
  queries: number;
  queries_missing_hits: number;
  top_k: number;
  ndcg_at_10: number;
  recall_at_100: number;
  ingest_seconds: number;
  ingest_docs_per_second: number;
  query_p50_ms: number;
  query_p95_ms: number;
  query_max_ms: number;
  eval_seconds: number;
  per_query: PerQueryResult[];
}

/** The largest receipt page the jobs endpoint serves. */
const RECEIPT_PAGE = 1000;

/** Nearest-rank percentile. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? 0;
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/**
 * Runs a BEIR retrieval benchmark through the server: a fresh server on a temp data dir, the corpus
 * ingested over HTTP, every test query searched over HTTP, nDCG@10 and Recall@top_k computed as
 * MTEB/pytrec_eval do (see retrieval-metrics.ts).
 */
export async function runEval(options: EvalOptions): Promise<EvalResult> {
  const started = performance.now();
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const datasetDir = resolve(options.dataset);
  const split = options.split ?? "test";
  const batchSize = options.batchSize ?? 256;
  const concurrency = options.concurrency ?? 4;
  const topK = options.topK ?? 100;
  for (const file of ["corpus.jsonl", "queries.jsonl", join("qrels", `${split}.tsv`)]) {
    if (!existsSync(join(datasetDir, file))) throw new Error(`${join(datasetDir, file)} not found`);
  }

  // Queries first: a bad dataset fails before a model is loaded.
  let qrels: Qrels = await readQrels(datasetDir, split);
  if (options.limitQueries !== undefined) qrels = new Map([...qrels].slice(0, options.limitQueries));
  const allQueries = await readQueries(datasetDir);
  const queries = [...qrels.keys()].map((id) => {
    const text = allQueries.get(id);
    if (text === undefined) throw new Error(`Query ${id} is in the qrels but not in queries.jsonl`);
    return { id, text };
  });

  const dataDir = mkdtempSync(join(tmpdir(), "rag-embed-eval-"));
  const server = await launchServer({
    waitUntilReady: true,
    startTimeoutMs: 600_000,
    env: {
      DATA_DIR: dataDir,
      EMBEDDING_MODEL: options.model,
      // Hub models are cached where `npm start` caches them, not in the throw-away data dir.
      MODEL_CACHE_DIR: process.env.MODEL_CACHE_DIR ?? resolve(PACKAGE_ROOT, "data/models"),
      OVERFLOW_POLICY: "truncate",
      HOST: "127.0.0.1",
      PORT: String(options.port ?? 0),
      LOG_LEVEL: "info",
      API_KEYS: undefined,
      API_KEY_RATE_LIMIT: undefined,
      ...options.serverEnv,
    },
  });
  const client = server.client;
  try {
    log(`server ${server.url} (data dir ${dataDir}) is ready`);
    const modelInfo = await client.modelInfo();
    // The report names the weights measured (hub id or directory), not only the name clients use.
    const modelSource = modelInfo.model_source;
    log(`model ${modelSource} (profile ${modelInfo.profile}, max ${modelInfo.max_tokens} tokens)`);

    // Ingest through the HTTP API, ~batchSize chunks per request.
    const ingestStarted = performance.now();
    const seen = new Set<string>();
    const jobIds: string[] = [];
    let skippedEmpty = 0;
    let batch: Array<{ id: string; text: string; document_id: string }> = [];
    const flush = async () => {
      if (batch.length === 0) return;
      const body = { chunks: batch };
      batch = [];
      // One request per batch: the SDK waits out 429/503 and resends a lost request with its key.
      const accepted = await client.ingest(EVAL_COLLECTION, body.chunks, { batchSize: body.chunks.length });
      if (accepted.accepted !== body.chunks.length) {
        throw new Error(
          `Jobs ${accepted.jobIds.join(", ")} accepted ${accepted.accepted} of ${body.chunks.length} chunks`,
        );
      }
      jobIds.push(...accepted.jobIds);
    };
    for await (const doc of readCorpus(datasetDir)) {
      if (options.limitDocs !== undefined && seen.size + skippedEmpty >= options.limitDocs) break;
      if (seen.has(doc.id)) throw new Error(`Corpus document ${doc.id} appears twice`);
      const text = documentText(doc);
      if (text === "") {
        skippedEmpty += 1;
        continue;
      }
      seen.add(doc.id);
      batch.push({ id: doc.id, text, document_id: doc.id });
      if (batch.length >= batchSize) await flush();
    }
    await flush();
    const docs = seen.size;
    log(`${docs} documents sent in ${jobIds.length} requests; waiting for the jobs…`);

    // Wait for every job, then check every document was stored exactly once.
    const pending = new Set(jobIds);
    const totals: JobCounts = {
      total: 0,
      queued: 0,
      running: 0,
      stored: 0,
      unchanged: 0,
      superseded: 0,
      failed: 0,
      dead: 0,
      discarded: 0,
      cancelled: 0,
    };
    let truncatedDocs = 0;
    let lastReport = 0;
    while (pending.size > 0) {
      for (const id of [...pending]) {
        const job = await client.job(id, { limit: 1 });
        if (job.state !== "done") continue;
        pending.delete(id);
        if (job.counts.stored !== job.counts.total || job.failures.length > 0) {
          throw new Error(
            `Job ${id} ended with ${JSON.stringify(job.counts)}: ${JSON.stringify(job.failures).slice(0, 1000)}`,
          );
        }
        for (const key of Object.keys(totals) as Array<keyof JobCounts>) totals[key] += job.counts[key];
        truncatedDocs += await countTruncated(client, id);
      }
      if (pending.size === 0) break;
      if (performance.now() - lastReport > 10_000) {
        lastReport = performance.now();
        log(`  ${jobIds.length - pending.size}/${jobIds.length} jobs done`);
      }
      await sleep(250);
    }
    const ingestSeconds = (performance.now() - ingestStarted) / 1000;
    if (totals.total !== docs || totals.stored !== docs) {
      throw new Error(`Sent ${docs} documents but the jobs count ${JSON.stringify(totals)}`);
    }

    // Count stored points through search: a search as deep as the corpus lists every point once.
    let storedPoints: number | null = null;
    const firstQuery = queries[0];
    if (docs <= MAX_TOP_K && firstQuery) {
      const all = await client.search(EVAL_COLLECTION, firstQuery.text, { topK: MAX_TOP_K });
      const ids = new Set(all.hits.map((hit) => hit.id));
      storedPoints = all.hits.length;
      const unknown = [...ids].filter((id) => !seen.has(id));
      if (storedPoints !== docs || ids.size !== docs || unknown.length > 0) {
        throw new Error(
          `Expected ${docs} stored points, one per document; found ${storedPoints} points, ${ids.size} distinct ids, ${unknown.length} unknown`,
        );
      }
    }
    log(`ingested ${docs} documents in ${ingestSeconds.toFixed(1)} s; ${queries.length} queries…`);

    // Search every test query, a few in flight.
    const run: Run = new Map();
    const latencies = new Map<string, number>();
    let next = 0;
    const worker = async () => {
      for (;;) {
        const query = queries[next];
        next += 1;
        if (!query) return;
        const t0 = performance.now();
        const result = await client.search(EVAL_COLLECTION, query.text, { topK });
        latencies.set(query.id, performance.now() - t0);
        // Scores are similarities, best first; a rising score means a flipped distance somewhere.
        result.hits.forEach((hit, index) => {
          const previous = result.hits[index - 1];
          if (previous && hit.score > previous.score) {
            throw new Error(`Search hits for query ${query.id} are not in descending score order`);
          }
        });
        run.set(
          query.id,
          result.hits.map((hit) => ({ docId: hit.id, score: hit.score })),
        );
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));

    const metrics = evaluateRun(qrels, run, { ndcgK: 10, recallK: topK });
    const latencyValues = [...latencies.values()];
    return {
      dataset: basename(datasetDir),
      dataset_dir: datasetDir,
      split,
      model: modelSource,
      model_info: modelInfo,
      docs,
      stored_points: storedPoints,
      truncated_docs: truncatedDocs,
      skipped_empty_docs: skippedEmpty,
      queries: metrics.queries,
      queries_missing_hits: metrics.missingFromRun,
      top_k: topK,
      ndcg_at_10: round(metrics.ndcgAtK, 5),
      recall_at_100: round(metrics.recallAtK, 5),
      ingest_seconds: round(ingestSeconds, 2),
      ingest_docs_per_second: round(docs / ingestSeconds, 1),
      query_p50_ms: round(percentile(latencyValues, 50), 1),
      query_p95_ms: round(percentile(latencyValues, 95), 1),
      query_max_ms: round(Math.max(0, ...latencyValues), 1),
      eval_seconds: round((performance.now() - started) / 1000, 2),
      per_query: metrics.perQuery.map((q) => ({
        query_id: q.queryId,
        hits: q.retrieved,
        latency_ms: round(latencies.get(q.queryId) ?? 0, 1),
        ndcg_at_10: round(q.ndcg, 5),
        recall_at_100: round(q.recall, 5),
      })),
    };
  } finally {
    const code = await server.stop({ graceMs: 60_000 });
    if (code !== 0) log(`server exited with ${code}`);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The short table printed at the end. */
export function formatTable(result: EvalResult): string {
  const rows: Array<[string, string]> = [
    ["dataset", `${result.dataset} (${result.split})`],
    ["model", result.model],
    [
      "docs",
      `${result.docs} (stored points ${result.stored_points ?? "n/a"}, truncated ${result.truncated_docs})`,
    ],
    ["queries", String(result.queries)],
    ["nDCG@10", result.ndcg_at_10.toFixed(5)],
    [`Recall@${result.top_k}`, result.recall_at_100.toFixed(5)],
    ["ingest", `${result.ingest_seconds.toFixed(1)} s (${result.ingest_docs_per_second} docs/s)`],
    ["query p50 / p95", `${result.query_p50_ms} ms / ${result.query_p95_ms} ms`],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join("\n");
}

/** Documents of a finished job that were truncated, read from its receipts (the server's own record). */
async function countTruncated(client: RagEmbedClient, jobId: string): Promise<number> {
  let truncated = 0;
  let cursor: number | null = null;
  do {
    const page = await client.job(jobId, {
      limit: RECEIPT_PAGE,
      ...(cursor === null ? {} : { after: cursor }),
    });
    truncated += page.chunks.filter((receipt) => receipt.truncated).length;
    cursor = page.next_cursor;
  } while (cursor !== null);
  return truncated;
}
