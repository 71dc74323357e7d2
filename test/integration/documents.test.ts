/**
 * Documents, not just chunks (both stores, both queues): replacing a document's chunk set leaves
 * exactly the new set, without re-embedding what did not change and without a moment where readers
 * see nothing of it; the last accepted replace wins whatever the order workers finish in; a delete
 * also cancels the document's queued chunks.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Job } from "../../src/client/types.js";
import type { Embedder } from "../../src/embedder/embedder.js";
import type { HttpServer } from "../../src/main.js";
import { startInProcess } from "../helpers/in-process-server.js";
import { tempDir } from "../helpers/paths.js";
import { type QdrantContractServer, startQdrantContractServer } from "../helpers/qdrant-contract-server.js";
import { RedisTestServer } from "../helpers/redis-server.js";
import {
  getJson,
  postJson,
  type ServerProcess,
  startServerProcess,
  waitFor,
} from "../helpers/server-process.js";

type JobView = Job;

/** Called when an embed of SLOW texts starts (planning is over: it is embedding). */
let slowEmbedStarted: (() => void) | null = null;

/** The real embedder, slowed down for texts marked SLOW, so one replace can finish after a later one. */
function slowable(inner: Embedder): Embedder {
  return {
    load: () => inner.load(),
    info: () => inner.info(),
    countTokens: (texts, kind) => inner.countTokens(texts, kind),
    close: () => inner.close(),
    embed: async (texts, kind, overflow) => {
      if (texts.some((t) => t.includes("SLOW"))) {
        slowEmbedStarted?.();
        await sleep(1500);
      }
      return inner.embed(texts, kind, overflow);
    },
  };
}

async function put(server: HttpServer | ServerProcess, collection: string, doc: string, chunks: unknown[]) {
  const response = await fetch(`${server.url}/v1/collections/${collection}/documents/${doc}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ chunks }),
  });
  const body = (await response.json()) as { job_id: string };
  assert.equal(response.status, 202, JSON.stringify(body));
  return body.job_id;
}

/** The job, once done and (for a replacement) its old points cleaned up. */
async function settled(server: HttpServer | ServerProcess, jobId: string): Promise<JobView> {
  return waitFor(
    async () => {
      const { status, body } = await getJson<JobView>(`${server.url}/v1/jobs/${jobId}?limit=1000`).catch(
        () => ({
          status: 0,
          body: null as unknown as JobView,
        }),
      );
      if (status !== 200 || body.state !== "done") return undefined;
      return body.replace === null || body.replace.finalized ? body : undefined;
    },
    { what: `job ${jobId} done and finalized`, timeoutMs: 120_000, intervalMs: 50 },
  );
}

async function documentPoints(
  server: HttpServer | ServerProcess,
  collection: string,
  doc: string,
): Promise<Map<string, string>> {
  const { status, body } = await postJson<{ hits: Array<{ id: string; payload: { text: string } }> }>(
    `${server.url}/v1/collections/${collection}/search`,
    { query: "anything", top_k: 1000, filter: { document_id: doc } },
  );
  assert.equal(status, 200);
  return new Map(body.hits.map((h) => [h.id, h.payload.text]));
}

const chunk = (id: string, text: string) => ({ id, text });

interface Setup {
  name: string;
  env: () => Record<string, string>;
}

describe("documents: replace, last-wins, delete", () => {
  let redis: RedisTestServer | undefined;
  let qdrant: QdrantContractServer | undefined;

  before(async () => {
    redis = await RedisTestServer.start();
    qdrant = await startQdrantContractServer();
  });

  after(async () => {
    await qdrant?.close();
    await redis?.stop();
  });

  const setups: Setup[] = [
    { name: "embedded: SQLite queue and store", env: () => ({}) },
    {
      name: "BullMQ queue and Qdrant store",
      env: () => ({
        QUEUE_URL: redis!.url,
        QUEUE_PREFIX: `docs-${randomUUID()}`,
        VECTOR_STORE: "qdrant",
        QDRANT_URL: qdrant!.url,
      }),
    },
  ];

  for (const setup of setups) {
    describe(setup.name, () => {
      let server: HttpServer;
      const collection = `docs_${randomUUID().slice(0, 8)}`;

      before(async () => {
        server = await startInProcess(
          { ...setup.env(), MAX_PARALLEL_TASKS: "2", RESERVE_MAX_CHUNKS: "4" },
          {
            decorateEmbedder: slowable,
          },
        );
      });

      after(async () => {
        await server.shutdown(2000);
      });

      it("a document of 10 chunks replaced by 6 (3 changed, 3 unchanged): exactly those 6 remain", async () => {
        const ten = Array.from({ length: 10 }, (_, i) => chunk(`d1-${i}`, `first text of section ${i}`));
        await settled(server, await put(server, collection, "doc-1", ten));
        assert.equal((await documentPoints(server, collection, "doc-1")).size, 10);

        const six = [
          ...ten.slice(0, 3),
          ...[3, 4, 5].map((i) => chunk(`d1-${i}`, `second text of section ${i}, rewritten SLOW`)),
        ];
        // A reader polling search during the replace always sees the document.
        let polls = 0;
        let empty = 0;
        let reading = true;
        const reader = (async () => {
          while (reading) {
            const seen = await documentPoints(server, collection, "doc-1");
            polls += 1;
            if (seen.size === 0) empty += 1;
            await sleep(20);
          }
        })();
        const job = await settled(server, await put(server, collection, "doc-1", six));
        reading = false;
        await reader;
        assert.ok(polls > 3, `the reader looked ${polls} times`);
        assert.equal(empty, 0, "the reader never saw the document without chunks");

        const points = await documentPoints(server, collection, "doc-1");
        assert.deepEqual(
          [...points.keys()].sort(),
          six.map((c) => c.id).sort(),
          "exactly the new set remains",
        );
        for (const c of six) assert.equal(points.get(c.id), c.text);
        assert.deepEqual(
          [job.counts.unchanged, job.counts.stored],
          [3, 3],
          "the 3 unchanged chunks were not embedded again",
        );
        assert.ok(
          job.chunks.filter((r) => r.state === "unchanged").every((r) => r.tokens === null),
          "no tokens embedded for the unchanged",
        );
        assert.equal(job.replace?.deleted_points, 4);
        assert.deepEqual([...(job.replace?.deleted_chunk_ids ?? [])].sort(), [
          "d1-6",
          "d1-7",
          "d1-8",
          "d1-9",
        ]);
      });

      it("two replaces sent back to back, the first finishing last: the second wins", async () => {
        const slowFirst = [
          chunk("d2-a", "old A SLOW"),
          chunk("d2-b", "old B SLOW"),
          chunk("d2-c", "old C SLOW"),
        ];
        const second = [chunk("d2-a", "new A"), chunk("d2-z", "new Z")];
        const embedding = new Promise<void>((resolve) => {
          slowEmbedStarted = resolve;
        });
        const first = await put(server, collection, "doc-2", slowFirst);
        // The first is planned and being embedded (slowly) when the second arrives: it finishes last.
        await embedding;
        slowEmbedStarted = null;
        const then = await put(server, collection, "doc-2", second);
        await settled(server, then);
        const firstJob = await settled(server, first);
        // Embedded (the hook saw it) but not kept: its writes were undone once the floor was seen.
        assert.equal(firstJob.counts.superseded, 3, JSON.stringify(firstJob.counts));
        const points = await documentPoints(server, collection, "doc-2");
        assert.deepEqual(Object.fromEntries(points), { "d2-a": "new A", "d2-z": "new Z" });
      });

      it("delete while the document's chunks are queued: nothing of it remains once the jobs finish", async () => {
        const many = Array.from({ length: 24 }, (_, i) => chunk(`d3-${i}`, `queued text ${i} SLOW`));
        const job = await put(server, collection, "doc-3", many);
        const response = await fetch(`${server.url}/v1/collections/${collection}/documents/doc-3`, {
          method: "DELETE",
        });
        assert.equal(response.status, 200);
        const done = await settled(server, job);
        assert.equal((await documentPoints(server, collection, "doc-3")).size, 0);
        assert.ok((done.counts.cancelled ?? 0) > 0, `receipts say cancelled: ${JSON.stringify(done.counts)}`);
        assert.equal(done.counts.stored ?? 0, 0, "nothing of it was stored after the delete");
      });
    });
  }
});

describe("documents through the seed API: /test/embed?replace_documents=true", () => {
  it("replaces each document (item_sequence) of the request with the chunks sent", async () => {
    const server = await startInProcess({ QDRANT_COLLECTION: "seeded" });
    try {
      const seed = (id: string, doc: string, contents: string) => ({
        chunk_id: id,
        item_sequence: doc,
        name: "leaflet",
        contents,
        meta: null,
      });
      const send = async (chunks: unknown[], replace: boolean) => {
        const { status, body } = await postJson<{ job_id: string }>(
          `${server.url}/test/embed${replace ? "?replace_documents=true" : ""}`,
          chunks,
        );
        assert.equal(status, 202);
        return settled(server, body.job_id);
      };
      await send(
        [seed("s1", "L1", "one"), seed("s2", "L1", "two"), seed("s3", "L1", "three"), seed("t1", "L2", "x")],
        false,
      );
      const job = await send([seed("s1", "L1", "one"), seed("s2", "L1", "two, changed")], true);
      assert.deepEqual(job.replace?.documents, ["L1"]);
      const { body } = await postJson<{ hits: Array<{ id: string; payload: { contents: string } }> }>(
        `${server.url}/v1/collections/seeded/search`,
        { query: "anything", top_k: 100 },
      );
      assert.deepEqual(body.hits.map((h) => h.id).sort(), ["s1", "s2", "t1"], "s3 is gone; L2 is untouched");
    } finally {
      await server.shutdown(2000);
    }
  });
});

describe("documents: SIGKILL during a replace", () => {
  const dataDir = tempDir("docs-kill");
  let server: ServerProcess | undefined;

  after(async () => {
    await server?.stop("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("after a restart the document ends in its new state, nothing duplicated", async () => {
    const env = { DATA_DIR: dataDir, EMBEDDING_MAX_RATE: "10", RESERVE_MAX_CHUNKS: "4" };
    server = await startServerProcess(env);
    const old = Array.from({ length: 30 }, (_, i) => chunk(`k-${i}`, `old ${i}`));
    await settled(server, await put(server, "killed", "doc-k", old));
    const fresh = Array.from({ length: 20 }, (_, i) => chunk(`k-${i + 10}`, `new ${i + 10}`));
    const job = await put(server, "killed", "doc-k", fresh);
    await waitFor(
      async () => {
        const { body } = await getJson<JobView>(`${server!.url}/v1/jobs/${job}`);
        return (body.counts.stored ?? 0) > 0 ? true : undefined;
      },
      { what: "part of the replace stored" },
    );
    await server.stop("SIGKILL");
    server = await startServerProcess(env);
    await settled(server, job);
    const points = await documentPoints(server, "killed", "doc-k");
    assert.deepEqual([...points.keys()].sort(), fresh.map((c) => c.id).sort());
    for (const c of fresh) assert.equal(points.get(c.id), c.text);
  });
});
