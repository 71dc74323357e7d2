import { performance } from "node:perf_hooks";
import type { RagEmbedClient } from "../client/index.js";
import { documentText, readCorpus } from "./beir.js";
import { waitForJobs } from "./eval-jobs.js";

export interface CorpusIngestOptions {
  datasetDir: string;
  collection: string;
  /** Only the first N corpus documents. */
  limitDocs?: number;
  /** Chunks per ingest request. */
  batchSize: number;
  log: (line: string) => void;
}

export interface CorpusIngest {
  /** Every document sent (chunk id = document id = corpus `_id`). */
  docIds: Set<string>;
  skippedEmpty: number;
  truncated: number;
  /** From the first ingest request to the last job done. */
  seconds: number;
}

/**
 * Streams the corpus into `collection` through the HTTP API, one document per chunk, and waits until
 * every job has stored every chunk.
 */
export async function ingestCorpus(
  client: RagEmbedClient,
  options: CorpusIngestOptions,
): Promise<CorpusIngest> {
  const { collection, log } = options;
  const started = performance.now();
  const docIds = new Set<string>();
  const jobIds: string[] = [];
  let skippedEmpty = 0;
  let batch: Array<{ id: string; text: string; document_id: string }> = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const chunks = batch;
    batch = [];
    // One request per batch: the SDK waits out 429/503 and resends a lost request with its key.
    const accepted = await client.ingest(collection, chunks, { batchSize: chunks.length });
    if (accepted.accepted !== chunks.length) {
      throw new Error(
        `Jobs ${accepted.jobIds.join(", ")} accepted ${accepted.accepted} of ${chunks.length} chunks`,
      );
    }
    jobIds.push(...accepted.jobIds);
  };
  for await (const doc of readCorpus(options.datasetDir)) {
    if (options.limitDocs !== undefined && docIds.size + skippedEmpty >= options.limitDocs) break;
    if (docIds.has(doc.id)) throw new Error(`Corpus document ${doc.id} appears twice`);
    const text = documentText(doc);
    if (text === "") {
      skippedEmpty += 1;
      continue;
    }
    docIds.add(doc.id);
    batch.push({ id: doc.id, text, document_id: doc.id });
    if (batch.length >= options.batchSize) await flush();
  }
  await flush();
  log(`${docIds.size} documents sent in ${jobIds.length} requests; waiting for the jobs…`);

  const { totals, truncated } = await waitForJobs(client, jobIds, log);
  if (totals.total !== docIds.size || totals.stored !== docIds.size) {
    throw new Error(`Sent ${docIds.size} documents but the jobs count ${JSON.stringify(totals)}`);
  }
  return { docIds, skippedEmpty, truncated, seconds: (performance.now() - started) / 1000 };
}
