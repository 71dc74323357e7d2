import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { AppError, ProcessingError } from "../../src/domain/errors.js";
import type { HttpServer } from "../../src/main.js";
import type { VectorStore } from "../../src/vector-store/vector-store.js";
import { type JobBody, seedChunks, waitForJobDone } from "../helpers/fixtures.js";
import { startInProcess } from "../helpers/in-process-server.js";
import { getJson, postJson, waitFor } from "../helpers/server-process.js";

const MAX_ATTEMPTS = 4;

/** Wraps the real store; while `down`, every call fails like an unreachable store would. */
function outageStore(inner: VectorStore, state: { down: boolean; refused: number }): VectorStore {
  const guard =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      if (state.down) {
        state.refused += 1;
        throw new ProcessingError("store unavailable: connection refused (injected outage)", {
          retryable: true,
        });
      }
      return fn(...args);
    };
  return {
    ensureCollection: guard((spec) => inner.ensureCollection(spec)),
    describeCollection: guard((c) => inner.describeCollection(c)),
    adoptCollection: guard((c, b) => inner.adoptCollection(c, b)),
    setAlias: guard((a, c) => inner.setAlias(a, c)),
    writeChunks: guard((c, w) => inner.writeChunks(c, w)),
    fingerprints: guard((c, ids) => inner.fingerprints(c, ids)),
    deleteDocument: guard((c, d, v) => inner.deleteDocument(c, d, v)),
    deleteChunkVersions: guard((c, chunks) => inner.deleteChunkVersions(c, chunks)),
    search: guard((c, v, k, f) => inner.search(c, v, k, f)),
    parentTexts: guard((c, p) => inner.parentTexts(c, p)),
    count: guard((c) => inner.count(c)),
    ping: guard(() => inner.ping()),
    close: () => inner.close(),
  };
}

interface DeadLetters {
  dead_letters: Array<{ id: number; job_id: string; chunk_id: string; reason: string; attempts: number }>;
  next_cursor: number | null;
}

describe("store outage: retries with backoff, dead letters only where retries ran out, replay stores them", () => {
  const state = { down: false, refused: 0 };
  let server: HttpServer;

  before(async () => {
    server = await startInProcess(
      {
        MAX_ATTEMPTS: String(MAX_ATTEMPTS),
        RETRY_BASE_MS: "100",
        RETRY_MAX_MS: "400",
        MAX_QUEUE_SIZE: "250",
        RESERVE_MAX_CHUNKS: "32",
      },
      { decorateStore: (inner) => outageStore(inner, state) },
    );
  });
  after(async () => {
    await server.shutdown(2000);
  });

  it("keeps accepting until full during the outage, and everything lands once the store returns", async () => {
    state.down = true;
    const first = await postJson<{ job_id: string }>(`${server.url}/test/embed`, seedChunks(120, "a"));
    const second = await postJson<{ job_id: string }>(`${server.url}/test/embed`, seedChunks(100, "b"));
    assert.equal(first.status, 202, "accepting while the store is down");
    assert.equal(second.status, 202);
    const full = await postJson(`${server.url}/test/embed`, seedChunks(100, "c"));
    assert.equal(full.status, 429, "full queue answers 429, not 500");
    assert.ok(Number(full.headers.get("retry-after")) >= 1);

    // Let the retry budget run out for at least some chunks, then bring the store back.
    await waitFor(
      async () => {
        const { body } = await getJson<DeadLetters>(`${server.url}/v1/dead-letters?limit=1`);
        return body.dead_letters.length > 0;
      },
      { what: "first dead letters", timeoutMs: 30_000 },
    );
    state.down = false;
    assert.ok(state.refused > 0, "the outage was actually hit");

    const jobs: JobBody[] = [];
    for (const id of [first.body.job_id, second.body.job_id]) jobs.push(await waitForJobDone(server.url, id));
    const totalDead = jobs.reduce((sum, job) => sum + job.counts.dead, 0);
    const totalStored = jobs.reduce((sum, job) => sum + job.counts.stored, 0);
    assert.equal(totalDead + totalStored, 220, "every accepted chunk is stored or a dead letter: none lost");
    assert.ok(totalDead > 0);

    // Every dead letter spent its whole retry budget and says why.
    const dead: DeadLetters["dead_letters"] = [];
    let cursor: number | null = null;
    do {
      const page: { body: DeadLetters } = await getJson<DeadLetters>(
        `${server.url}/v1/dead-letters?limit=50${cursor === null ? "" : `&after=${cursor}`}`,
      );
      dead.push(...page.body.dead_letters);
      cursor = page.body.next_cursor;
    } while (cursor !== null);
    assert.equal(dead.length, totalDead, "paging lists every dead letter once");
    for (const letter of dead) {
      assert.equal(letter.attempts, MAX_ATTEMPTS, `dead letter ${letter.chunk_id} used every attempt`);
      assert.match(letter.reason, /injected outage/);
    }

    // The job shows its failed chunks with the reason, and its receipts agree.
    const failedJob = jobs.find((job) => job.counts.dead > 0)!;
    assert.ok(failedJob.failures.every((f) => /injected outage/.test(f.reason)));
    const receipts = await getJson<{ chunks: Array<{ state: string }> }>(
      `${server.url}/v1/jobs/${failedJob.id}?state=dead&limit=1000`,
    );
    assert.equal(receipts.body.chunks.length, failedJob.counts.dead);

    const replay = await postJson<{ replayed: number }>(`${server.url}/v1/dead-letters/replay`, {
      all: true,
    });
    assert.equal(replay.status, 200);
    assert.equal(replay.body.replayed, totalDead);
    for (const job of jobs) {
      const done = await waitForJobDone(server.url, job.id);
      assert.equal(done.counts.dead, 0, "replay stored the dead letters");
      assert.equal(done.counts.stored + done.counts.unchanged, done.counts.total);
    }
    const search = await postJson<{ hits: Array<{ id: string }> }>(
      `${server.url}/v1/collections/test/search`,
      {
        query: "water",
        top_k: 1000,
      },
    );
    assert.equal(search.body.hits.length, 220, "one point per accepted chunk");
    assert.equal(new Set(search.body.hits.map((h) => h.id)).size, 220);
    const empty = await getJson<DeadLetters>(`${server.url}/v1/dead-letters`);
    assert.equal(empty.body.dead_letters.length, 0);
  });

  it("discarding a dead letter keeps it on record in its job and never processes it", async () => {
    state.down = true;
    const accepted = await postJson<{ job_id: string }>(`${server.url}/test/embed`, seedChunks(3, "d"));
    const job = await waitForJobDone(server.url, accepted.body.job_id);
    state.down = false;
    assert.equal(job.counts.dead, 3);
    const discard = await fetch(`${server.url}/v1/dead-letters`, {
      method: "DELETE",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ job_id: job.id }),
    });
    assert.equal(discard.status, 200);
    assert.deepEqual(await discard.json(), { discarded: 3 });
    const after = await getJson<JobBody & { counts: { discarded: number } }>(
      `${server.url}/v1/jobs/${job.id}`,
    );
    assert.equal(after.body.counts.discarded, 3);
    const replay = await postJson<{ replayed: number }>(`${server.url}/v1/dead-letters/replay`, {
      job_id: job.id,
    });
    assert.equal(replay.body.replayed, 0, "a discarded letter cannot be replayed");
    const ambiguous = await postJson(`${server.url}/v1/dead-letters/replay`, { all: true, job_id: job.id });
    assert.equal(ambiguous.status, 400, "selectors are exclusive");
  });
});

describe("a collection deleted behind the server's back is created again on the retry", () => {
  // Simulates an operator deleting the collection: writes fail with collection_not_found until
  // someone calls ensureCollection again.
  const state = { vanished: false, ensured: 0 };
  let server: HttpServer;

  before(async () => {
    server = await startInProcess(
      { MAX_ATTEMPTS: "3", RETRY_BASE_MS: "50", RETRY_MAX_MS: "100" },
      {
        decorateStore: (inner) => ({
          ...inner,
          ensureCollection: async (spec) => {
            state.ensured += 1;
            state.vanished = false;
            return inner.ensureCollection(spec);
          },
          writeChunks: async (c, w) => {
            if (state.vanished)
              throw new AppError("collection_not_found", `Collection "${c}" does not exist`);
            return inner.writeChunks(c, w);
          },
          describeCollection: (c) => inner.describeCollection(c),
          adoptCollection: (c, b) => inner.adoptCollection(c, b),
          setAlias: (a, c) => inner.setAlias(a, c),
          fingerprints: (c, ids) => inner.fingerprints(c, ids),
          deleteDocument: (c, d, v) => inner.deleteDocument(c, d, v),
          deleteChunkVersions: (c, chunks) => inner.deleteChunkVersions(c, chunks),
          search: (c, v, k, f) => inner.search(c, v, k, f),
          count: (c) => inner.count(c),
          ping: () => inner.ping(),
          close: () => inner.close(),
        }),
      },
    );
  });
  after(async () => {
    await server.shutdown(2000);
  });

  it("stores the next chunks instead of dead-lettering them until a restart", async () => {
    const first = await postJson<{ job_id: string }>(`${server.url}/test/embed`, seedChunks(2, "v1"));
    await waitForJobDone(server.url, first.body.job_id);
    const ensuredBefore = state.ensured;
    state.vanished = true;
    const second = await postJson<{ job_id: string }>(`${server.url}/test/embed`, seedChunks(2, "v2"));
    const job = await waitForJobDone(server.url, second.body.job_id);
    assert.equal(job.counts.dead, 0, JSON.stringify(job.failures));
    assert.equal(job.counts.stored, 2);
    assert.ok(state.ensured > ensuredBefore, "ensureCollection ran again");
  });
});
