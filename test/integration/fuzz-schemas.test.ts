import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";
import fc from "fast-check";
import { loadSettings } from "../../src/config/settings.js";
import { ERROR_CODES } from "../../src/domain/errors.js";
import { type HttpServer, startHttpServer } from "../../src/main.js";
import { createLogger } from "../../src/observability/logger.js";
import { waitForJobDone } from "../helpers/fixtures.js";
import { tempDir, testModelDir } from "../helpers/paths.js";

/**
 * Property-based fuzzing of the request schemas against a real in-process server: whatever arrives,
 * the answer is never 5xx, every 4xx carries the error body with a catalogued code, and the queue
 * grows by exactly the accepted count (nothing for a refusal: no partial enqueue).
 *
 * Reproduce a failure with FC_SEED=<seed> (fast-check prints seed and path); FUZZ_RUNS sets the
 * runs per property.
 */
const seedEnv = process.env.FC_SEED;
const FC_PARAMS: fc.Parameters<unknown> = {
  numRuns: Number(process.env.FUZZ_RUNS ?? 200),
  ...(seedEnv !== undefined && seedEnv !== "" ? { seed: Number(seedEnv) } : {}),
  endOnFailure: false,
};

const CODES = new Set<string>(ERROR_CODES);

// ---------------------------------------------------------------------------------------------------
// Arbitraries

/** JSON number literals JSON.stringify cannot write; spliced in for a marker string. */
const HUGE_LITERALS = [
  "123456789012345678901234567890",
  "-123456789012345678901234567890",
  "9007199254740993",
  "1e309",
  "-1e309",
  "1e-400",
  "-0",
  "1.5",
  "0.0",
  "1E2",
];
const hugeMarker = (i: number) => `@@HUGE_${i}@@`;

function serialize(value: unknown): string {
  return JSON.stringify(value).replace(/"@@HUGE_(\d+)@@"/g, (_, i: string) => HUGE_LITERALS[Number(i)]!);
}

const shortText = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: "binary", maxLength: 20 }),
  fc.string({ unit: "grapheme", maxLength: 20 }),
);
const text = fc.oneof(
  { weight: 4, arbitrary: fc.string({ minLength: 1, maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom("", " ", "\t\n", "\u00a0", "\u200b", "\ufeff") },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 20_000 }).map((n) => "약 ".repeat(n)) },
);
const id = fc.oneof(fc.string({ minLength: 1, maxLength: 16 }), fc.nat(), fc.string({ maxLength: 600 }));
const junk = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(null, true, false, 0, -1, 1.5, [], {}, "", [[[]]], { a: { b: { c: [] } } }),
  fc.integer({ min: 0, max: HUGE_LITERALS.length - 1 }).map(hugeMarker),
);
const jsonObject = fc.dictionary(shortText, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 });

const seedChunk = fc.record({
  chunk_id: id,
  item_sequence: fc.oneof(fc.string({ maxLength: 16 }), fc.integer()),
  name: shortText,
  contents: text,
  meta: fc.oneof(fc.constant(null), jsonObject),
});

const nativeChunk = fc.record(
  {
    id,
    text,
    document_id: fc.oneof(fc.constant(null), fc.string({ maxLength: 16 }), fc.integer()),
    metadata: fc.oneof(fc.constant(null), jsonObject),
  },
  { requiredKeys: ["id", "text"] },
);

type Mutation =
  | { kind: "drop" | "empty" | "unicode" | "duplicate-id" | "replace-chunk"; at: number; field: number }
  | { kind: "type" | "extra-field"; at: number; field: number; value: unknown; key: string }
  | { kind: "huge"; at: number; field: number; literal: number }
  | { kind: "nested"; at: number; field: number; depth: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constantFrom("drop", "empty", "unicode", "duplicate-id", "replace-chunk") as fc.Arbitrary<
      "drop" | "empty" | "unicode" | "duplicate-id" | "replace-chunk"
    >,
    at: fc.nat(),
    field: fc.nat(),
  }),
  fc.record({
    kind: fc.constantFrom("type", "extra-field") as fc.Arbitrary<"type" | "extra-field">,
    at: fc.nat(),
    field: fc.nat(),
    value: junk,
    key: shortText,
  }),
  fc.record({
    kind: fc.constant("huge" as const),
    at: fc.nat(),
    field: fc.nat(),
    literal: fc.nat(HUGE_LITERALS.length - 1),
  }),
  fc.record({ kind: fc.constant("nested" as const), at: fc.nat(), field: fc.nat(), depth: fc.nat(200) }),
);

function nest(depth: number): unknown {
  let value: unknown = "deep";
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { x: value };
  return value;
}

/** Applies mutations to copies of the chunks; `fields[0]` is the id field. */
function mutate(chunks: unknown[], mutations: Mutation[], fields: string[]): unknown[] {
  const out = chunks.map((chunk) => ({ ...(chunk as Record<string, unknown>) })) as unknown[];
  for (const m of mutations) {
    if (out.length === 0) break;
    const at = m.at % out.length;
    const field = fields[m.field % fields.length]!;
    const target = out[at];
    if (typeof target !== "object" || target === null || Array.isArray(target)) continue;
    const chunk = target as Record<string, unknown>;
    switch (m.kind) {
      case "drop":
        delete chunk[field];
        break;
      case "empty":
        chunk[field] = "";
        break;
      case "unicode":
        chunk[field] = "\ud800 \u0000 한국어 💊 \u202e\ufffe";
        break;
      case "duplicate-id": {
        const first = out[0] as Record<string, unknown> | undefined;
        if (first && typeof first === "object") chunk[fields[0]!] = first[fields[0]!];
        break;
      }
      case "replace-chunk":
        out[at] = m.field % 2 === 0 ? null : [chunk];
        break;
      case "type":
        chunk[field] = m.value;
        break;
      case "extra-field":
        chunk[m.key] = m.value;
        break;
      case "huge":
        chunk[field] = hugeMarker(m.literal);
        break;
      case "nested":
        chunk[field] = nest(m.depth);
        break;
    }
  }
  return out;
}

type Wrap = "bare" | "wrapped" | "wrapped+extra" | "double-wrapped" | "chunks-object" | "array-of-wrapper";
const wrap = fc.constantFrom<Wrap>(
  "bare",
  "wrapped",
  "wrapped+extra",
  "double-wrapped",
  "chunks-object",
  "array-of-wrapper",
);

function wrapChunks(chunks: unknown[], how: Wrap): unknown {
  switch (how) {
    case "bare":
      return chunks;
    case "wrapped":
      return { chunks };
    case "wrapped+extra":
      return { chunks, extra: { nested: [1, "x"] } };
    case "double-wrapped":
      return { chunks: { chunks } };
    case "chunks-object":
      return { chunks: Object.fromEntries(chunks.map((c, i) => [String(i), c])) };
    case "array-of-wrapper":
      return [{ chunks }];
  }
}

const seedBody = fc
  .record({
    chunks: fc.array(seedChunk, { minLength: 0, maxLength: 6 }),
    mutations: fc.array(mutation, { maxLength: 3 }),
    wrap,
  })
  .map(({ chunks, mutations, wrap: how }) =>
    serialize(
      wrapChunks(mutate(chunks, mutations, ["chunk_id", "item_sequence", "name", "contents", "meta"]), how),
    ),
  );

const nativeBody = fc
  .record({
    chunks: fc.array(nativeChunk, { minLength: 0, maxLength: 6 }),
    mutations: fc.array(mutation, { maxLength: 3 }),
    wrap: fc.oneof({ weight: 4, arbitrary: fc.constant<Wrap>("wrapped") }, { weight: 1, arbitrary: wrap }),
  })
  .map(({ chunks, mutations, wrap: how }) =>
    serialize(wrapChunks(mutate(chunks, mutations, ["id", "text", "document_id", "metadata"]), how)),
  );

const searchBody = fc
  .record({
    body: fc.record(
      {
        query: fc.oneof(text, shortText),
        top_k: fc.oneof(
          { weight: 3, arbitrary: fc.integer({ min: 1, max: 50 }) },
          fc.integer({ min: -5, max: 20_000 }),
        ),
        filter: fc.oneof(
          fc.dictionary(
            shortText,
            fc.oneof(
              fc.string({ maxLength: 8 }),
              fc.double({ noNaN: true, noDefaultInfinity: true }),
              fc.boolean(),
              fc.array(fc.integer(), { maxLength: 3 }),
            ),
            { maxKeys: 3 },
          ),
          junk,
        ),
      },
      { requiredKeys: ["query"] },
    ),
    mutations: fc.oneof(fc.constant<Mutation[]>([]), fc.array(mutation, { maxLength: 2 })),
  })
  .map(({ body, mutations }) => serialize(mutate([body], mutations, ["query", "top_k", "filter"])[0]));

const arbitraryJson = fc.oneof(
  fc.jsonValue().map((value) => JSON.stringify(value)),
  fc.anything().map((value) => JSON.stringify(value) ?? "null"),
);

const rawBytes = fc.oneof(
  fc.uint8Array({ maxLength: 512 }).map((bytes) => Buffer.from(bytes)),
  fc.string({ unit: "binary", maxLength: 200 }).map((s) => Buffer.from(s, "utf8")),
  // Valid JSON cut short, or with junk appended.
  fc.tuple(seedChunk, fc.nat(), fc.uint8Array({ maxLength: 8 })).map(([chunk, cut, tail]) => {
    const full = Buffer.from(JSON.stringify([chunk]));
    return Buffer.concat([full.subarray(0, cut % (full.length + 1)), Buffer.from(tail)]);
  }),
);
const contentType = fc.constantFrom(
  "application/json",
  "application/json",
  "application/json; charset=utf-8",
  "application/json; charset=latin1",
  "text/plain",
  "application/octet-stream",
  "application/x-www-form-urlencoded",
  undefined,
);

const validCollection = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);
const collectionName = fc.oneof(
  { weight: 3, arbitrary: validCollection },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 80 }) },
  { weight: 1, arbitrary: fc.constantFrom("", ".", "..", "%", "a".repeat(65), "a b", "c?x=1", "c#f", "😀") },
);

// ---------------------------------------------------------------------------------------------------

describe("schema fuzzing: never 5xx, errors are catalogued, no partial enqueue", () => {
  let server: HttpServer;

  before(async () => {
    const settings = loadSettings({
      DATA_DIR: tempDir("fuzz"),
      EMBEDDING_MODEL: testModelDir(),
      PORT: "0",
      MAX_QUEUE_SIZE: "100000000",
      BODY_LIMIT_BYTES: String(1024 * 1024),
      LOG_LEVEL: "silent",
      // One chunk may be taken when the pipeline starts; then none for ~1000 s, so the queue only
      // grows by what was admitted.
      EMBEDDING_MAX_RATE: "0.001",
    });
    server = await startHttpServer(settings, createLogger(settings.logLevel));
    await server.ready;
    // Spend the rate limiter's initial token on a warm-up chunk (also gives collection "c" a vector,
    // so searches do real work), and wait until it is stored so it never re-enters the queue.
    const warm = await fetch(`${server.url}/v1/collections/c/chunks`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ chunks: [{ id: "warm", text: "warm-up chunk", document_id: "d" }] }),
    });
    assert.equal(warm.status, 202);
    await waitForJobDone(server.url, ((await warm.json()) as { job_id: string }).job_id, 60_000);
  });
  after(async () => {
    await server?.shutdown(1000);
  });

  async function pending(): Promise<number> {
    const response = await fetch(`${server.url}/test/status`);
    assert.equal(response.status, 200);
    return ((await response.json()) as { current_task_queue_size: number }).current_task_queue_size;
  }

  /** Statuses seen per property, to show the fuzzing reached both acceptance and refusal. */
  let seen = new Map<number, number>();
  beforeEach(() => {
    seen = new Map();
  });
  afterEach((t) => {
    if ("diagnostic" in t) t.diagnostic(`statuses: ${statuses()}`);
  });
  function statuses(): string {
    return [...seen.entries()]
      .sort(([a], [b]) => a - b)
      .map(([status, n]) => `${status}×${n}`)
      .join(" ");
  }

  /** Sends one body and checks every property that holds for any input. */
  async function check(
    path: string,
    body: string | Buffer,
    options: { type?: string | undefined; enqueues: boolean },
  ): Promise<void> {
    const before = await pending();
    const headers: Record<string, string> = {};
    if (options.type !== undefined) headers["content-type"] = options.type;
    const response = await fetch(`${server.url}${path}`, { method: "POST", headers, body });
    const raw = await response.text();
    seen.set(response.status, (seen.get(response.status) ?? 0) + 1);
    const what = `POST ${path} → ${response.status} ${raw.slice(0, 500)}\nbody: ${String(body).slice(0, 500)}`;
    assert.ok(response.status < 500, `5xx: ${what}`);
    const after = await pending();
    if (response.status >= 400) {
      const parsed = JSON.parse(raw) as { error?: { code?: unknown; message?: unknown } };
      assert.ok(parsed.error && typeof parsed.error === "object", `error body: ${what}`);
      assert.ok(CODES.has(String(parsed.error.code)), `catalogued code: ${what}`);
      assert.ok(typeof parsed.error.message === "string" && parsed.error.message.length > 0, what);
      assert.equal(after, before, `a refusal enqueued ${after - before} chunk(s): ${what}`);
      return;
    }
    if (!options.enqueues) {
      assert.equal(response.status, 200, what);
      assert.equal(after, before, `search changed the queue: ${what}`);
      return;
    }
    assert.equal(response.status, 202, what);
    const accepted = JSON.parse(raw) as { count: unknown; status: unknown };
    assert.equal(accepted.status, "accepted", what);
    assert.ok(typeof accepted.count === "number" && Number.isInteger(accepted.count) && accepted.count > 0);
    assert.equal(after - before, accepted.count, `queue grew by ${after - before}, not count: ${what}`);
  }

  it("POST /test/embed: arbitrary JSON values", async () => {
    await fc.assert(
      fc.asyncProperty(arbitraryJson, (body) =>
        check("/test/embed", body, { type: "application/json", enqueues: true }),
      ),
      FC_PARAMS,
    );
  });

  it("POST /test/embed: mutated seed bodies", async () => {
    await fc.assert(
      fc.asyncProperty(seedBody, (body) =>
        check("/test/embed", body, { type: "application/json", enqueues: true }),
      ),
      FC_PARAMS,
    );
    assert.ok(seen.has(202) && seen.has(400), `both accepted and refused bodies were tried: ${statuses()}`);
  });

  it("POST /test/embed: raw bytes with any content type", async () => {
    await fc.assert(
      fc.asyncProperty(rawBytes, contentType, (body, type) =>
        check("/test/embed", body, { type, enqueues: true }),
      ),
      FC_PARAMS,
    );
  });

  it("POST /v1/collections/{c}/chunks: mutated native bodies and random collection names", async () => {
    await fc.assert(
      fc.asyncProperty(collectionName, nativeBody, (collection, body) =>
        check(`/v1/collections/${encodeURIComponent(collection)}/chunks`, body, {
          type: "application/json",
          enqueues: true,
        }),
      ),
      FC_PARAMS,
    );
    assert.ok(seen.has(202) && seen.has(400), `both accepted and refused bodies were tried: ${statuses()}`);
  });

  it("POST /v1/collections/{c}/chunks: arbitrary JSON and raw bytes", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(arbitraryJson, rawBytes), contentType, (body, type) =>
        check("/v1/collections/c/chunks", body, { type, enqueues: true }),
      ),
      FC_PARAMS,
    );
  });

  it("POST /v1/collections/c/search: mutated, arbitrary and raw bodies", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof({ weight: 3, arbitrary: searchBody }, arbitraryJson, rawBytes),
        contentType,
        (body, type) =>
          check("/v1/collections/c/search", body, {
            type: typeof body === "string" ? "application/json" : type,
            enqueues: false,
          }),
      ),
      { ...FC_PARAMS, numRuns: Math.ceil((FC_PARAMS.numRuns ?? 200) / 2) },
    );
    assert.ok(seen.has(200) && seen.has(400), `both real searches and refusals were tried: ${statuses()}`);
  });
});
