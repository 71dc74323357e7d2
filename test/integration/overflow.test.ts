import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { HttpServer } from "../../src/main.js";
import { waitForJobDone } from "../helpers/fixtures.js";
import { startInProcess } from "../helpers/in-process-server.js";
import { getJson, postJson } from "../helpers/server-process.js";

interface Receipt {
  chunk_id: string;
  state: string;
  tokens: number | null;
  truncated: boolean;
  truncated_tokens: number;
  split: boolean;
  windows: number | null;
  model: string | null;
  profile: string | null;
}
interface Hit {
  id: string;
  payload: Record<string, unknown>;
}

const WORDS = ["alpha", "beta", "gamma", "delta", "river", "stone", "light", "cloud"];
/**
 * `n` common words, each one WordPiece token (with [CLS] and [SEP]: n + 2 tokens), in a
 * pseudo-random order so that every window is a unique substring.
 */
function longText(n: number, seed = 1): string {
  let state = seed;
  return Array.from({ length: n }, () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return WORDS[Math.floor((state / 2147483648) * WORDS.length)];
  }).join(" ");
}

describe("over-long text: split, truncate and reject policies (2,000-token chunk)", () => {
  let server: HttpServer;
  const text = longText(1998);

  before(async () => {
    server = await startInProcess({ OVERFLOW_POLICY: "split", SPLIT_OVERLAP_TOKENS: "32" });
  });
  after(async () => {
    await server.shutdown(2000);
  });

  async function ingest(collection: string, body: object): Promise<{ jobId: string; receipts: Receipt[] }> {
    const accepted = await postJson<{ job_id: string }>(
      `${server.url}/v1/collections/${collection}/chunks`,
      body,
    );
    assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
    await waitForJobDone(server.url, accepted.body.job_id);
    const job = await getJson<{ chunks: Receipt[] }>(`${server.url}/v1/jobs/${accepted.body.job_id}`);
    return { jobId: accepted.body.job_id, receipts: job.body.chunks };
  }

  async function windowsOf(collection: string, parent: string): Promise<Hit[]> {
    const search = await postJson<{ hits: Hit[] }>(`${server.url}/v1/collections/${collection}/search`, {
      query: "alpha",
      top_k: 1000,
      filter: { parent_chunk_id: parent },
    });
    assert.equal(search.status, 200);
    return search.body.hits.sort((a, b) => Number(a.payload.window_index) - Number(b.payload.window_index));
  }

  it("split (the server default) cuts overlapping windows that fit, each a point searchable by parent id", async () => {
    const { receipts } = await ingest("split", { chunks: [{ id: "long-1", text, document_id: "doc" }] });
    const receipt = receipts[0]!;
    assert.equal(receipt.state, "stored");
    assert.equal(receipt.split, true);
    assert.equal(receipt.tokens, 2000, "the whole text was counted");
    assert.equal(receipt.truncated_tokens, 0, "nothing dropped");
    // 254 tokens per window after [CLS]/[SEP], 32 shared: ceil((2000 - 2 - 32) / 222) = 9 windows.
    assert.ok(
      receipt.windows !== null && receipt.windows >= 8 && receipt.windows <= 10,
      `windows ${receipt.windows}`,
    );
    assert.equal(receipt.profile, "minilm");
    assert.ok(receipt.model);

    const windows = await windowsOf("split", "long-1");
    assert.equal(windows.length, receipt.windows);
    let previousEnd = 0;
    windows.forEach((hit, index) => {
      assert.equal(hit.id, `long-1#${index}`);
      assert.equal(hit.payload.window_index, index);
      assert.equal(hit.payload.window_count, windows.length);
      assert.equal(hit.payload.document_id, "doc");
      const windowText = String(hit.payload.window_text);
      const start = text.indexOf(windowText);
      assert.ok(start >= 0, `window ${index} is a substring of the chunk`);
      assert.ok(windowText.split(" ").length <= 254, `window ${index} fits the model`);
      if (index > 0) assert.ok(start < previousEnd, `window ${index} overlaps the previous one`);
      previousEnd = start + windowText.length;
    });
    assert.equal(previousEnd, text.length, "the windows cover the whole text");
  });

  it("re-ingesting the parent replaces all its windows", async () => {
    await ingest("split", { chunks: [{ id: "long-1", text: longText(600, 3), document_id: "doc" }] });
    const shorter = await windowsOf("split", "long-1");
    assert.equal(shorter.length, 3, "600 tokens → 3 windows; the 6 old ones beyond are gone");
    await ingest("split", {
      chunks: [{ id: "long-1", text: "now it fits in one window", document_id: "doc" }],
    });
    assert.equal((await windowsOf("split", "long-1")).length, 0, "no window remains");
    const all = await postJson<{ hits: Hit[] }>(`${server.url}/v1/collections/split/search`, {
      query: "fits",
      top_k: 1000,
    });
    assert.deepEqual(
      all.body.hits.map((h) => h.id),
      ["long-1"],
    );
  });

  it("a client chunk named like a window ('w#1') and the windows of 'w' are distinct points", async () => {
    await ingest("names", { chunks: [{ id: "w#1", text: "a chunk of its own" }] });
    await ingest("names", { chunks: [{ id: "w", text }] });
    const own = await postJson<{ hits: Hit[] }>(`${server.url}/v1/collections/names/search`, {
      query: "alpha",
      top_k: 1000,
      filter: { text: "a chunk of its own" },
    });
    assert.equal(own.body.hits.length, 1, "window 1 of 'w' did not overwrite the chunk 'w#1'");
    // Re-ingesting 'w' shorter deletes its old windows, and only those.
    await ingest("names", { chunks: [{ id: "w", text: longText(300, 3) }] });
    assert.equal((await windowsOf("names", "w")).length, 2);
    const again = await postJson<{ hits: Hit[] }>(`${server.url}/v1/collections/names/search`, {
      query: "alpha",
      top_k: 1000,
      filter: { text: "a chunk of its own" },
    });
    assert.equal(again.body.hits.length, 1, "'w#1' survived the clean-up of w's windows");
  });

  it("truncate keeps the first window and records the dropped tokens", async () => {
    const { receipts } = await ingest("trunc", { chunks: [{ id: "long-2", text }], overflow: "truncate" });
    const receipt = receipts[0]!;
    assert.equal(receipt.state, "stored");
    assert.equal(receipt.truncated, true);
    assert.equal(receipt.tokens, 256);
    assert.equal(receipt.truncated_tokens, 2000 - 256);
    assert.equal(receipt.split, false);
    assert.equal(receipt.windows, 1);
  });

  it("reject refuses the request with 422 naming the offending chunk, and enqueues nothing", async () => {
    const before = await getJson<{ current_task_queue_size: number }>(`${server.url}/test/status`);
    const refused = await postJson<{
      error: { code: string; message: string; details: { chunks: object[] } };
    }>(`${server.url}/v1/collections/rej/chunks`, {
      chunks: [
        { id: "short", text: "fine" },
        { id: "long-3", text },
      ],
      overflow: "reject",
    });
    assert.equal(refused.status, 422);
    assert.equal(refused.body.error.code, "text_too_long");
    assert.match(refused.body.error.message, /long-3/);
    assert.deepEqual(refused.body.error.details.chunks, [{ chunk_id: "long-3", tokens: 2000 }]);
    const seed = await postJson<{ error: { code: string } }>(`${server.url}/test/embed?overflow=reject`, [
      { chunk_id: "s-long", item_sequence: "1", name: "n", contents: text, meta: null },
    ]);
    assert.equal(seed.status, 422);
    const afterStatus = await getJson<{ current_task_queue_size: number }>(`${server.url}/test/status`);
    assert.equal(afterStatus.body.current_task_queue_size, before.body.current_task_queue_size);
    const count = await postJson<{ hits: Hit[] }>(`${server.url}/v1/collections/rej/search`, { query: "x" });
    assert.equal(count.status, 404, "the collection was never created");
    const fits = await ingest("rej", { chunks: [{ id: "short", text: "fine" }], overflow: "reject" });
    assert.equal(fits.receipts[0]?.state, "stored", "reject lets texts that fit through");
  });
});
