import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Embedder } from "../../src/embedder/embedder.js";
import type { HttpServer } from "../../src/main.js";
import { KOREAN_PASSAGES, koreanDocument } from "../fixtures/korean-retrieval.js";
import { waitForJobDone } from "../helpers/fixtures.js";
import { startInProcess } from "../helpers/in-process-server.js";
import { getJson, postJson } from "../helpers/server-process.js";

const LEAFLET = koreanDocument(4391);

interface ErrorBody {
  error: { code: string; message: string; details: Record<string, unknown> };
}
interface Status {
  queue: { pending_chunks: number; pending_tokens_estimate: number };
}

/** The real embedder, counting the texts admission asks it to tokenize. */
function countingCalls(inner: Embedder, counted: string[][]): Embedder {
  return new Proxy(inner, {
    get(target, property) {
      if (property === "countTokens") {
        return (texts: string[], kind: Parameters<Embedder["countTokens"]>[1]) => {
          counted.push(texts);
          return target.countTokens(texts, kind);
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

describe("MAX_WINDOWS_PER_CHUNK: a chunk that would need more windows is refused at admission", () => {
  let server: HttpServer;
  const counted: string[][] = [];
  // MiniLM's 256-token windows (253 after [CLS], [SEP] and the bound on a prefix) sharing 32 tokens:
  // 4 windows hold 4 × 253 − 3 × 32 = 916 tokens.
  const MAX_TOKENS = 916;

  before(async () => {
    server = await startInProcess(
      { MAX_WINDOWS_PER_CHUNK: "4", SPLIT_OVERLAP_TOKENS: "32" },
      { decorateEmbedder: (embedder) => countingCalls(embedder, counted) },
    );
  });
  after(async () => {
    await server.shutdown(2000);
  });

  async function pending(): Promise<number> {
    return (await getJson<Status>(`${server.url}/v1/status`)).body.queue.pending_chunks;
  }

  for (const overflow of ["split", "pool"]) {
    it(`${overflow}: 422 text_too_long naming the chunk, its tokens and the cap; nothing enqueued`, async () => {
      const before = await pending();
      counted.length = 0;
      const refused = await postJson<ErrorBody>(`${server.url}/v1/collections/capped/chunks`, {
        chunks: [
          { id: "short", text: KOREAN_PASSAGES[0]!.text },
          { id: "leaflet", text: LEAFLET },
        ],
        overflow,
      });
      assert.equal(refused.status, 422, JSON.stringify(refused.body));
      assert.equal(refused.body.error.code, "text_too_long");
      assert.match(refused.body.error.message, /leaflet \(\d+ tokens\)/);
      assert.match(refused.body.error.message, /more than 4 windows/);
      const { details } = refused.body.error;
      assert.equal(details.max_windows, 4);
      assert.equal(details.max_tokens, MAX_TOKENS);
      const [entry, ...others] = details.chunks as Array<{ chunk_id: string; tokens: number }>;
      assert.equal(others.length, 0, "the short chunk is not named");
      assert.equal(entry?.chunk_id, "leaflet");
      assert.ok((entry?.tokens ?? 0) > 5000, `MiniLM cuts Korean into jamo: ${entry?.tokens} tokens`);
      assert.deepEqual(counted, [[LEAFLET]], "only the text that could be over the cap was tokenized");
      assert.equal(await pending(), before, "nothing of the request was enqueued");
      const search = await postJson(`${server.url}/v1/collections/capped/search`, { query: "x" });
      assert.equal(search.status, 404, "the collection was never created");
    });
  }

  it("lets a chunk within the cap through, tokenizing only what could be over it", async () => {
    counted.length = 0;
    // 1,121 UTF-8 bytes: over the 916-token bound, so counted; 722 MiniLM tokens, so within it.
    const within = KOREAN_PASSAGES.slice(10, 14)
      .map((p) => p.text)
      .join(" ");
    const short = KOREAN_PASSAGES[20]!.text;
    const accepted = await postJson<{ job_id: string }>(`${server.url}/v1/collections/capped/chunks`, {
      chunks: [
        { id: "within", text: within },
        { id: "short", text: short },
      ],
      overflow: "split",
    });
    assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
    assert.deepEqual(counted, [[within]], "the short chunk surely fits: not tokenized");
    await waitForJobDone(server.url, accepted.body.job_id);
    const job = await getJson<{ chunks: Array<{ chunk_id: string; windows: number }> }>(
      `${server.url}/v1/jobs/${accepted.body.job_id}`,
    );
    const windows = job.body.chunks.find((c) => c.chunk_id === "within")?.windows ?? 0;
    assert.ok(windows >= 2 && windows <= 4, `${windows} windows`);
  });

  it("does not apply to truncate, which embeds one window whatever the length", async () => {
    const accepted = await postJson(`${server.url}/v1/collections/capped/chunks`, {
      chunks: [{ id: "leaflet", text: LEAFLET }],
      overflow: "truncate",
    });
    assert.equal(accepted.status, 202);
  });
});

describe("MAX_QUEUE_TOKENS bounds the queue in estimated tokens: Korean text gets 429 once it is full", () => {
  let server: HttpServer;

  before(async () => {
    // An API process runs no pipeline: the queue only fills.
    server = await startInProcess({ ROLE: "api", MAX_QUEUE_TOKENS: "3000", MAX_QUEUE_SIZE: "1000" });
  });
  after(async () => {
    await server.shutdown(2000);
  });

  it("refuses the request that would pass the bound, names the bound, enqueues nothing of it", async () => {
    const status = async () => (await getJson<Status>(`${server.url}/v1/status`)).body.queue;
    let refused: Awaited<ReturnType<typeof postJson<ErrorBody>>> | undefined;
    let sent = 0;
    for (let round = 0; round < 40 && !refused; round++) {
      const chunks = KOREAN_PASSAGES.slice(0, 5).map((p, i) => ({ id: `r${round}-${i}`, text: p.text }));
      const before = await status();
      const answer = await postJson<ErrorBody>(`${server.url}/v1/collections/full/chunks`, { chunks });
      if (answer.status === 202) {
        sent += 1;
        continue;
      }
      refused = answer;
      assert.deepEqual(await status(), before, "the refused request left the queue as it was");
    }
    assert.ok(refused, "the queue filled up");
    assert.ok(sent > 0, "requests within the bound were accepted");
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error.code, "queue_full");
    assert.equal(refused.body.error.details.limit, "tokens");
    assert.match(refused.body.error.message, /MAX_QUEUE_TOKENS/);
    assert.ok(Number(refused.headers.get("retry-after")) >= 1);
    const queue = await status();
    assert.ok(queue.pending_tokens_estimate <= 3000);
    assert.ok(
      queue.pending_tokens_estimate + Number(refused.body.error.details.requested_tokens) > 3000,
      "the refused request would have passed the bound",
    );
    assert.ok(queue.pending_chunks < 1000, "the chunk bound was not the one reached");
  });
});
