import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ProcessingError } from "../../src/domain/errors.js";
import type { HttpServer } from "../../src/main.js";
import { waitForJobDone } from "../helpers/fixtures.js";
import { startInProcess } from "../helpers/in-process-server.js";
import { type QdrantContractServer, startQdrantContractServer } from "../helpers/qdrant-contract-server.js";
import { postJson } from "../helpers/server-process.js";
import { TcpSwitch } from "../helpers/tcp-switch.js";

interface Answer {
  status: number;
  retryAfter: string | null;
  body: { error?: { code: string; message: string; details?: Record<string, unknown> } } & Record<
    string,
    unknown
  >;
  ms: number;
}

/** One request, timed; the client gives up at 20 s, so a hang shows as a failure, not a stuck test. */
async function call(url: string, method = "GET", body?: unknown): Promise<Answer> {
  const started = Date.now();
  const response = await fetch(url, {
    method,
    signal: AbortSignal.timeout(20_000),
    ...(body === undefined
      ? {}
      : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
  });
  return {
    status: response.status,
    retryAfter: response.headers.get("retry-after"),
    body: (await response.json()) as Answer["body"],
    ms: Date.now() - started,
  };
}

/** A 503 of this code with a Retry-After, answered within a bounded time (BACKEND_TIMEOUT_MS is 1.5 s). */
function assertUnavailable(answer: Answer, code: string): void {
  assert.equal(answer.status, 503, JSON.stringify(answer.body));
  assert.equal(answer.body.error?.code, code);
  assert.ok(Number(answer.retryAfter) >= 1, `Retry-After: ${answer.retryAfter}`);
  assert.ok(answer.ms < 10_000, `answered in ${answer.ms} ms`);
}

describe("Qdrant unreachable or frozen: 503 store_unavailable with Retry-After, /ready 503, never a bare 500", () => {
  let qdrant: QdrantContractServer;
  let relay: TcpSwitch;
  let server: HttpServer;

  before(async () => {
    qdrant = await startQdrantContractServer();
    relay = await TcpSwitch.start({ host: "127.0.0.1", port: Number(new URL(qdrant.url).port) });
    server = await startInProcess({
      VECTOR_STORE: "qdrant",
      QDRANT_URL: relay.url,
      // Qdrant's own timeout stays at its 30 s default: the API must not wait for it.
      BACKEND_TIMEOUT_MS: "1500",
      READY_FAILURE_SECONDS: "0",
      RETRY_BASE_MS: "100",
      RETRY_MAX_MS: "200",
      MAX_ATTEMPTS: "1000",
    });
  });
  after(async () => {
    await relay.up();
    await server.shutdown(2000);
    await relay.close();
    await qdrant.close();
  });

  it("answers 503 on every route that touches the store, and recovers when Qdrant returns", async () => {
    const accepted = await postJson<{ job_id: string }>(`${server.url}/v1/collections/docs/chunks`, {
      chunks: [
        { id: "a", text: "aspirin for headaches", document_id: "d1" },
        { id: "b", text: "ibuprofen for fever", document_id: "d2" },
      ],
    });
    assert.equal(accepted.status, 202);
    await waitForJobDone(server.url, accepted.body.job_id);
    const search = `${server.url}/v1/collections/docs/search`;
    assert.equal((await call(search, "POST", { query: "pain" })).status, 200);

    await relay.refuse();
    assertUnavailable(await call(search, "POST", { query: "pain" }), "store_unavailable");
    const deleted = await call(`${server.url}/v1/collections/docs/documents/d1`, "DELETE");
    assertUnavailable(deleted, "store_unavailable");
    assert.match(deleted.body.error?.message ?? "", /unreachable/);
    const ready = await call(`${server.url}/ready`);
    assertUnavailable(ready, "store_unavailable");
    assert.equal((ready.body.error?.details?.store as { ok: boolean } | undefined)?.ok, false);
    // Accepting does not need the store: chunks wait in the queue.
    const queued = await call(`${server.url}/v1/collections/docs/chunks`, "POST", {
      chunks: [{ id: "c", text: "paracetamol dosage" }],
    });
    assert.equal(queued.status, 202);
    const status = await call(`${server.url}/v1/status`);
    assert.equal(status.status, 200);
    assert.equal((status.body.backends as { store: { ok: boolean } }).store.ok, false);

    // A Qdrant that takes connections and never answers: Qdrant's own 30 s timeout is not waited for.
    await relay.up();
    relay.hang();
    const frozen = await call(search, "POST", { query: "pain" });
    assertUnavailable(frozen, "store_unavailable");
    assert.match(frozen.body.error?.message ?? "", /did not answer within 1500 ms/);
    assertUnavailable(await call(`${server.url}/ready`), "store_unavailable");

    await relay.up();
    const back = await call(search, "POST", { query: "pain" });
    assert.equal(back.status, 200, JSON.stringify(back.body));
    assert.equal((await call(`${server.url}/ready`)).status, 200);
    const done = await waitForJobDone(server.url, queued.body.job_id as string);
    assert.equal(done.counts.stored, 1, "the chunk accepted during the outage is stored");
  });
});

describe("a failing model gives 502 embedder_failed, not 500", () => {
  const state = { broken: false };
  let server: HttpServer;

  before(async () => {
    server = await startInProcess(
      {},
      {
        decorateEmbedder: (inner) =>
          new Proxy(inner, {
            get(target, property) {
              const value: unknown = Reflect.get(target, property, target);
              if (property === "embed" && state.broken) {
                return async () => {
                  throw new ProcessingError("embedding worker exited with code 134 (injected)", {
                    retryable: true,
                  });
                };
              }
              return typeof value === "function" ? value.bind(target) : value;
            },
          }),
      },
    );
  });
  after(async () => {
    await server.shutdown(2000);
  });

  it("on search and on /v1/embeddings", async () => {
    state.broken = true;
    const search = await call(`${server.url}/v1/collections/docs/search`, "POST", { query: "q" });
    assert.equal(search.status, 502, JSON.stringify(search.body));
    assert.equal(search.body.error?.code, "embedder_failed");
    assert.match(search.body.error?.message ?? "", /worker exited/);
    assert.ok(Number(search.retryAfter) >= 1);
    const models = (await (await fetch(`${server.url}/v1/models`)).json()) as { data: Array<{ id: string }> };
    const embeddings = await call(`${server.url}/v1/embeddings`, "POST", {
      input: "q",
      model: models.data[0]?.id,
    });
    assert.equal(embeddings.status, 502, JSON.stringify(embeddings.body));
    assert.equal(embeddings.body.error?.code, "embedder_failed");
    state.broken = false;
    assert.equal(
      (await call(`${server.url}/v1/collections/docs/search`, "POST", { query: "q" })).status,
      404,
    );
  });
});
