/**
 * A fake remote embedding engine on loopback, for the remote embedder's tests: OpenAI's
 * `POST /v1/embeddings` or TEI's documented `POST /embed` + `GET /info`. It embeds deterministically
 * (a vector derived from sha256 of model and text), and it is a strict provider:
 * - it counts every text it embedded (200 answers), so a test can prove none was embedded twice;
 * - it checks every request against the client's documented rate promise (see checkLimits) and its
 *   concurrency, records violations, and notes requests that came before a Retry-After it gave had
 *   passed;
 * - it answers 429 (with Retry-After) or 5xx on a schedule of request numbers;
 * - it refuses a text containing POISON (400 openai / 422 TEI), batches over TEI's
 *   max_client_batch_size and inputs over its max_input_length, as TEI does.
 * `stop()` takes the engine down: the answers already on their way are delivered (so what it counted as
 * embedded reached the client), every later request has its connection cut, and new connections are
 * refused; `start()` brings it back on the same port.
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { VectorRecord } from "../../src/domain/types.js";
import type { ChunkWrite, VectorStore } from "../../src/vector-store/vector-store.js";

export const POISON = "POISON";

export interface TeiInfoFixture {
  model_id: string;
  model_sha: string | null;
  max_input_length: number;
  max_client_batch_size: number;
}

export interface FakeEngineOptions {
  protocol: "openai" | "tei";
  dimension?: number;
  /** openai: model names served (any other is 404). */
  models?: string[];
  tei?: TeiInfoFixture;
  /** How the provider counts tokens of one input (special tokens included). */
  countTokens: (text: string) => number;
  /** The client's configured limits, to check every request against (0 = unchecked). */
  limits?: { rpm: number; tpm: number; largestInputTokens: number; concurrency?: number };
  /** A forced answer for the n-th request (1-based), or null to answer normally. */
  schedule?: (n: number) => { status: number; retryAfterSeconds?: number } | null;
  latencyMs?: number;
}

export interface RequestRecord {
  at: number;
  authorization: string | undefined;
  inputs: number;
  tokens: number;
  status: number;
}

export interface FakeEngine {
  readonly url: string;
  /** Times each text (as sent, prefix included) was embedded in a 200 answer, by model. */
  readonly embedded: Map<string, number>;
  readonly requests: RequestRecord[];
  /** Requests beyond the promised rate, described. */
  readonly violations: string[];
  /** Requests that came while a Retry-After this engine gave was still running. */
  readonly earlyRetries: number[];
  /** The most requests it was ever working on at once (arrived, not yet answered). */
  readonly peakInFlight: number;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The deterministic vector a text gets from `model` (not normalised; the client normalises). */
export function fakeVector(model: string, text: string, dimension = 16): number[] {
  const digest = createHash("sha256").update(`${model}\u0000${text}`).digest();
  return Array.from({ length: dimension }, (_, i) => (digest[i % digest.length]! - 127.5) / 64 + i / 1000);
}

/**
 * The rate promise of the remote embedder (docs/remote-embedders.md): in any window of W seconds, at
 * most burst + limit × W / 60, the burst being max(limit / 60, one input's largest cost); and never more
 * than the limit in 60 s. Arrival times lag send times by a few ms that vary, so the check allows 250 ms
 * of slack in the window.
 */
function checkLimits(
  history: RequestRecord[],
  now: number,
  limits: NonNullable<FakeEngineOptions["limits"]>,
): string[] {
  const problems: string[] = [];
  for (const windowSeconds of [1, 5, 15, 60]) {
    const inWindow = history.filter((r) => r.at > now - windowSeconds * 1000);
    const check = (what: string, limit: number, largest: number, used: number) => {
      if (limit <= 0) return;
      const burst = Math.max(limit / 60, largest);
      const allowed = Math.min(limit, burst + (limit * (windowSeconds + 0.25)) / 60);
      if (used > allowed)
        problems.push(`${used} ${what} in ${windowSeconds} s > ${allowed.toFixed(1)} allowed`);
    };
    check("requests", limits.rpm, 1, inWindow.length);
    check(
      "tokens",
      limits.tpm,
      limits.largestInputTokens,
      inWindow.reduce((sum, r) => sum + r.tokens, 0),
    );
  }
  return problems;
}

export async function startFakeEngine(options: FakeEngineOptions, port = 0): Promise<FakeEngine> {
  const dimension = options.dimension ?? 16;
  const embedded = new Map<string, number>();
  const requests: RequestRecord[] = [];
  const violations: string[] = [];
  const earlyRetries: number[] = [];
  const sockets = new Set<Socket>();
  /**
   * The last Retry-After given: requests may come again from `from` (100 ms after it) `until`;
   * `excused` more arrivals in that window are not early (see where it is set).
   */
  let retryAfter = { from: 0, until: 0, excused: 0 };
  let server: Server | null = null;
  let stopping = false;
  /** Answers being written: stop() waits for them. */
  const answering = new Set<Promise<void>>();
  /** Requests arrived and not yet answered: the client's concurrency as the provider sees it. */
  let inFlight = 0;
  let peakInFlight = 0;

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(body));
  };
  const refuse = (
    res: ServerResponse,
    status: number,
    message: string,
    headers: Record<string, string> = {},
  ) =>
    options.protocol === "tei"
      ? send(
          res,
          status,
          { error: message, error_type: status === 429 ? "overloaded" : "validation" },
          headers,
        )
      : send(res, status, { error: { message, type: "invalid_request_error", code: null } }, headers);

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const arrived = Date.now();
    // Counted from arrival until the answer is handed to the socket (or the connection is cut): the
    // client can send its next request only after reading this answer, so the count never runs ahead.
    inFlight += 1;
    peakInFlight = Math.max(peakInFlight, inFlight);
    const concurrency = options.limits?.concurrency ?? 0;
    if (concurrency > 0 && inFlight > concurrency)
      violations.push(`${inFlight} requests in flight > ${concurrency} allowed`);
    let released = false;
    const release = () => {
      if (!released) inFlight -= 1;
      released = true;
    };
    const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
    res.end = ((...args: unknown[]) => {
      release();
      return end(...args);
    }) as typeof res.end;
    res.once("close", release);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (stopping) {
      req.socket.destroy();
      return;
    }
    const url = req.url ?? "";
    if (options.protocol === "tei" && req.method === "GET" && url === "/info") {
      return send(res, 200, {
        ...options.tei,
        model_type: { embedding: { pooling: "mean" } },
        version: "fake",
      });
    }
    const route = options.protocol === "tei" ? "/embed" : "/v1/embeddings";
    if (req.method !== "POST" || url !== route)
      return send(res, 404, { error: `no route ${req.method} ${url}` });

    let body: Record<string, unknown>;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
    } catch {
      return refuse(res, 400, "body is not JSON");
    }
    const raw = options.protocol === "tei" ? body.inputs : body.input;
    const inputs = typeof raw === "string" ? [raw] : raw;
    if (!Array.isArray(inputs) || !inputs.every((x) => typeof x === "string") || inputs.length === 0) {
      return refuse(res, 400, "inputs must be a non-empty array of strings");
    }
    const tokens = inputs.reduce((sum, text) => sum + options.countTokens(text), 0);
    const record: RequestRecord = {
      at: arrived,
      authorization: req.headers.authorization,
      inputs: inputs.length,
      tokens,
      status: 0,
    };
    requests.push(record);
    const n = requests.length;
    if (arrived > retryAfter.from && arrived < retryAfter.until) {
      if (retryAfter.excused > 0) retryAfter.excused -= 1;
      else earlyRetries.push(n);
    }
    if (options.limits) {
      for (const problem of checkLimits(requests, arrived, options.limits))
        violations.push(`request ${n}: ${problem}`);
    }
    const answer = (status: number, respond: () => void) => {
      record.status = status;
      const done = new Promise<void>((resolve) => res.once("close", () => resolve()));
      answering.add(done);
      void done.then(() => answering.delete(done));
      const reply = () => {
        if (!res.destroyed) respond();
      };
      if (options.latencyMs) setTimeout(reply, options.latencyMs);
      else reply();
    };

    const forced = options.schedule?.(n);
    if (forced) {
      const headers: Record<string, string> = {};
      const seconds = forced.retryAfterSeconds;
      if (seconds !== undefined) headers["retry-after"] = String(seconds);
      return answer(forced.status, () => {
        // A request sent before the client read this answer is not early. Allow 100 ms, and, when the
        // client's concurrency is known, as many later arrivals as it may have had in flight without
        // this engine having seen them yet: on a loaded machine a request sent before the client read
        // this answer can reach this handler well after 100 ms. A client that ignored Retry-After
        // would still send more than that within the window.
        if (seconds !== undefined) {
          const concurrency = options.limits?.concurrency ?? 0;
          retryAfter = {
            from: Date.now() + 100,
            until: Date.now() + seconds * 1000,
            excused: Math.max(0, concurrency - inFlight),
          };
        }
        refuse(
          res,
          forced.status,
          forced.status === 429 ? "Rate limit reached, slow down" : "upstream failure",
          headers,
        );
      });
    }

    let model: string;
    if (options.protocol === "tei") {
      const tei = options.tei!;
      if (body.truncate !== false || body.normalize !== true) {
        return answer(422, () => refuse(res, 422, "the client must send truncate:false and normalize:true"));
      }
      if (inputs.length > tei.max_client_batch_size) {
        return answer(422, () =>
          refuse(
            res,
            422,
            `batch size ${inputs.length} > maximum allowed batch size ${tei.max_client_batch_size}`,
          ),
        );
      }
      const over = inputs.map(options.countTokens).find((count) => count > tei.max_input_length);
      if (over !== undefined) {
        return answer(422, () =>
          refuse(
            res,
            422,
            `Input validation error: \`inputs\` must have less than ${tei.max_input_length} tokens. Given: ${over}`,
          ),
        );
      }
      model = tei.model_id;
    } else {
      model = String(body.model);
      if (!(options.models ?? []).includes(model)) {
        return answer(404, () => refuse(res, 404, `The model '${model}' does not exist`));
      }
    }
    const poisoned = inputs.findIndex((text) => text.includes(POISON));
    if (poisoned >= 0) {
      return answer(options.protocol === "tei" ? 422 : 400, () =>
        refuse(res, options.protocol === "tei" ? 422 : 400, `input ${poisoned} contains forbidden content`),
      );
    }
    answer(200, () => {
      for (const text of inputs)
        embedded.set(`${model}\u0000${text}`, (embedded.get(`${model}\u0000${text}`) ?? 0) + 1);
      const vectors = inputs.map((text) => fakeVector(model, text, dimension));
      if (options.protocol === "tei") return send(res, 200, vectors);
      send(res, 200, {
        object: "list",
        // Out of order on purpose: clients must place embeddings by index.
        data: vectors.map((embedding, index) => ({ object: "embedding", index, embedding })).reverse(),
        model,
        usage: { prompt_tokens: tokens, total_tokens: tokens },
      });
    });
  };

  let boundPort = port;
  const engine: FakeEngine = {
    get url() {
      return `http://127.0.0.1:${boundPort}`;
    },
    embedded,
    requests,
    violations,
    earlyRetries,
    get peakInFlight() {
      return peakInFlight;
    },
    async start() {
      if (server) return;
      const listening = createServer((req, res) => {
        handle(req, res).catch((error: unknown) => {
          if (!res.headersSent) send(res, 500, { error: String(error) });
        });
      });
      listening.on("connection", (socket) => {
        sockets.add(socket);
        socket.on("close", () => sockets.delete(socket));
      });
      await new Promise<void>((resolve, reject) => {
        listening.once("error", reject);
        listening.listen(boundPort, "127.0.0.1", () => resolve());
      });
      const address = listening.address();
      boundPort = typeof address === "object" && address ? address.port : boundPort;
      server = listening;
    },
    async stop() {
      const closing = server;
      if (!closing) return;
      server = null;
      stopping = true;
      const closed = new Promise<void>((resolve) => closing.close(() => resolve()));
      await Promise.all([...answering]);
      // Kept-alive connections would keep it reachable: cut them, as a crashed engine would.
      for (const socket of sockets) socket.destroy();
      await closed;
      stopping = false;
    },
  };
  await engine.start();
  return engine;
}

/** Texts embedded more than once, with their counts. */
export function embeddedTwice(engine: FakeEngine): Array<[string, number]> {
  return [...engine.embedded].filter(([, count]) => count > 1);
}

/** Wraps a store so a test can read every vector written, by point id. */
export function capturingStore(inner: VectorStore, written: Map<string, VectorRecord>): VectorStore {
  return new Proxy(inner, {
    get(target, property) {
      if (property === "writeChunks") {
        return async (collection: string, writes: ChunkWrite[]) => {
          const results = await target.writeChunks(collection, writes);
          for (const write of writes) {
            if (write.kind !== "points") continue;
            for (const record of write.records) written.set(record.id, record);
          }
          return results;
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** The unit vector of `values`, as the remote embedder stores profile-normalised vectors. */
export function unit(values: ArrayLike<number>): number[] {
  const norm = Math.sqrt(Array.from(values).reduce((sum, v) => sum + v * v, 0));
  return Array.from(values, (v) => v / norm);
}
