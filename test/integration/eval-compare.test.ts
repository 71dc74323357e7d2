/**
 * `npm run eval -- --compare-model` on a SciFact slice: version 1 of `eval` ingested with the
 * random-weight MiniLM (A), the server restarted on the same data dir with the real MiniLM (B), the
 * collection re-embedded into `eval__v2` and both versions scored on the same queries; with
 * --cutover-if-better the name moves to v2 only when B gains enough.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { waitForJobDone } from "../helpers/fixtures.js";
import { REPO_ROOT, realModelDir, tempDir, testModelDir } from "../helpers/paths.js";
import { writeScifactSlice } from "../helpers/scifact-slice.js";
import {
  getJson,
  postJson,
  type ServerProcess,
  startServerProcess,
  waitUntilReady,
} from "../helpers/server-process.js";

// Small enough to run in about a minute on a shared 2-core machine, large enough that each query
// ranks its relevant documents among unrelated ones.
const FIRST_DOCS = 120;
const QUERIES = 20;

interface Cli {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function runEvalCli(args: string[]): Promise<Cli> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/eval/main.ts", ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, INIT_CWD: REPO_ROOT, EMBEDDING_THREADS: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (data: Buffer) => {
    stdout += data.toString();
  });
  child.stderr.on("data", (data: Buffer) => {
    stderr += data.toString();
  });
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stdout, stderr };
}

interface QueryDifference {
  query_id: string;
  ndcg_at_10_a: number;
  ndcg_at_10_b: number;
  ndcg_at_10_delta: number;
}

interface EvalSide {
  collection: string;
  built_by: string;
  model: string;
  docs: number;
  stored_points: number;
  queries: number;
  ndcg_at_10: number;
  recall_at_100: number;
  per_query: Array<{ query_id: string; ndcg_at_10: number }>;
}

interface CompareJson {
  collection: string;
  a: EvalSide;
  b: EvalSide;
  reembed: { count: number; skipped: number; from_version: string; to_version: string };
  comparison: {
    ndcg_at_10_a: number;
    ndcg_at_10_b: number;
    ndcg_at_10_delta: number;
    queries: number;
    improved: number;
    unchanged: number;
    regressed: number;
    per_query: QueryDifference[];
    most_improved: QueryDifference[];
  };
  cutover: {
    requested: boolean;
    passed: boolean;
    performed: boolean;
    min_delta: number;
    active_version: string | null;
  };
  data_dir: string | null;
}

describe("npm run eval --compare-model: two versions of a collection on a SciFact slice", () => {
  let dir: string;
  let slice: { docs: number; queries: string[] };
  let run: Cli;
  let result: CompareJson;

  before(async () => {
    dir = tempDir("eval-compare");
    slice = writeScifactSlice(join(dir, "slice"), { firstDocs: FIRST_DOCS, queries: QUERIES });
    run = await runEvalCli([
      "--dataset",
      join(dir, "slice"),
      "--model",
      testModelDir(),
      "--compare-model",
      realModelDir(),
      "--cutover-if-better",
      "--data-dir",
      join(dir, "data"),
      "--json",
      join(dir, "compare.json"),
    ]);
    if (run.code === 0) result = JSON.parse(readFileSync(join(dir, "compare.json"), "utf8")) as CompareJson;
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it("exits 0 and prints both scores, their difference and the decision", () => {
    assert.equal(run.code, 0, `eval failed:\n${run.stderr}`);
    assert.match(run.stdout, /nDCG@10\s+\d\.\d{5}\s+\d\.\d{5}\s+[+-]\d\.\d{5}/);
    assert.match(run.stdout, /better with B: \d+, same: \d+, worse: \d+/);
    assert.match(run.stdout, /cutover: done/);
    // The re-embed job's progress is reported like the ingest's.
    assert.match(run.stderr, /re-embedding \d+ chunks of eval into eval__v2/);
  });

  it("scores version 1 (model A, ingested) and version 2 (model B, re-embedded) on every document", () => {
    assert.equal(result.a.collection, "eval");
    assert.equal(result.a.built_by, "ingest");
    assert.equal(result.a.model, testModelDir());
    assert.equal(result.b.collection, "eval__v2");
    assert.equal(result.b.built_by, "reembed");
    assert.equal(result.b.model, realModelDir());
    for (const side of [result.a, result.b]) {
      assert.equal(side.docs, slice.docs);
      assert.equal(side.stored_points, slice.docs);
      assert.equal(side.queries, QUERIES);
    }
    assert.deepEqual(
      { ...result.reembed, job_id: undefined, seconds: undefined },
      {
        count: slice.docs,
        skipped: 0,
        from_version: "eval",
        to_version: "eval__v2",
        job_id: undefined,
        seconds: undefined,
      },
    );
  });

  it("the real model ranks better than the random one", () => {
    assert.ok(
      result.b.ndcg_at_10 > result.a.ndcg_at_10,
      `nDCG@10 B ${result.b.ndcg_at_10} should beat A ${result.a.ndcg_at_10}`,
    );
    assert.equal(result.comparison.ndcg_at_10_a, result.a.ndcg_at_10);
    assert.equal(result.comparison.ndcg_at_10_b, result.b.ndcg_at_10);
    assert.ok(result.comparison.ndcg_at_10_delta > 0);
    assert.ok(result.comparison.improved > 0);
  });

  it("has one difference row per query, consistent with each side's per-query scores", () => {
    const c = result.comparison;
    assert.equal(c.queries, QUERIES);
    assert.deepEqual(c.per_query.map((row) => row.query_id).sort(), [...slice.queries].sort());
    assert.equal(c.improved + c.unchanged + c.regressed, QUERIES);
    const a = new Map(result.a.per_query.map((row) => [row.query_id, row.ndcg_at_10]));
    const b = new Map(result.b.per_query.map((row) => [row.query_id, row.ndcg_at_10]));
    for (const row of c.per_query) {
      assert.equal(row.ndcg_at_10_a, a.get(row.query_id));
      assert.equal(row.ndcg_at_10_b, b.get(row.query_id));
    }
    assert.equal(c.improved, c.per_query.filter((row) => row.ndcg_at_10_delta > 0).length);
    assert.deepEqual(c.most_improved[0], c.per_query[0], "the largest gain is listed first in both");
  });

  it("cut over because B scored better, and the name reaches version 2 after a restart", async () => {
    assert.deepEqual(
      { ...result.cutover },
      {
        requested: true,
        passed: true,
        performed: true,
        min_delta: 0,
        active_version: "eval__v2",
        swap: { collection: "eval", active_version: "eval__v2", previous_version: "eval" },
        ndcg_at_10_delta: result.comparison.ndcg_at_10_delta,
      },
    );
    assert.equal(result.data_dir, join(dir, "data"));
    let server: ServerProcess | undefined;
    try {
      server = await startServerProcess({ DATA_DIR: join(dir, "data"), EMBEDDING_MODEL: realModelDir() });
      await waitUntilReady(server.url, 300_000);
      const info = await getJson<{ active_version: string; model_matches: boolean; points_count?: number }>(
        `${server.url}/v1/collections/eval`,
      );
      assert.equal(info.status, 200);
      assert.equal(info.body.active_version, "eval__v2");
      assert.equal(info.body.model_matches, true);
      // Searching the name now answers exactly what eval__v2 answered.
      const query = { query: "cancer cells", top_k: 10 };
      const byName = await postJson<{ hits: Array<{ id: string }> }>(
        `${server.url}/v1/collections/eval/search`,
        query,
      );
      const byVersion = await postJson<{ hits: Array<{ id: string }> }>(
        `${server.url}/v1/collections/eval__v2/search`,
        query,
      );
      assert.equal(byName.status, 200);
      assert.deepEqual(
        byName.body.hits.map((hit) => hit.id),
        byVersion.body.hits.map((hit) => hit.id),
      );
    } finally {
      await server?.stop();
    }
  });
});

describe("npm run eval --compare-model: no cutover below the bar", () => {
  let dir: string;
  let run: Cli;

  before(async () => {
    dir = tempDir("eval-compare-bar");
    writeScifactSlice(join(dir, "slice"), { firstDocs: 10, queries: 3 });
    // nDCG@10 cannot rise by more than 1: the bar is never reached.
    run = await runEvalCli([
      "--dataset",
      join(dir, "slice"),
      "--model",
      testModelDir(),
      "--compare-model",
      realModelDir(),
      "--cutover-if-better",
      "--min-delta",
      "1.5",
      "--json",
      join(dir, "compare.json"),
    ]);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps the name on version 1 and says why", () => {
    assert.equal(run.code, 0, `eval failed:\n${run.stderr}`);
    assert.match(
      run.stdout,
      /cutover: not done, nDCG@10 B - A [+-]\d\.\d{5} < 1\.5; eval still reaches eval\n/,
    );
    const result = JSON.parse(readFileSync(join(dir, "compare.json"), "utf8")) as CompareJson;
    assert.equal(result.cutover.requested, true);
    assert.equal(result.cutover.passed, false);
    assert.equal(result.cutover.performed, false);
    assert.equal(result.cutover.active_version, "eval");
    // Without --data-dir the temporary data dir is gone.
    assert.equal(result.data_dir, null);
  });

  it("refuses options that need another, and the same model twice", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["--cutover-if-better"], /--cutover-if-better needs --compare-model/],
      [["--compare-model", realModelDir(), "--min-delta", "0.1"], /--min-delta needs --cutover-if-better/],
      [
        ["--compare-model", realModelDir(), "--cutover-if-better", "--min-delta", "x"],
        /--min-delta must be a number/,
      ],
      [["--model", realModelDir(), "--compare-model", realModelDir()], /same model/],
    ];
    for (const [args, message] of cases) {
      const cli = await runEvalCli(["--dataset", join(dir, "slice"), ...args]);
      assert.equal(cli.code, 1, args.join(" "));
      assert.match(cli.stderr, message);
    }
  });
});

interface UrlSide {
  version: number;
  searched_as: string;
  active: boolean;
  model: string;
  points: number;
  per_query: Array<{ query_id: string; hits: number }>;
}

describe("npm run eval --url: two versions on a running server with both models", () => {
  const MODELS = JSON.stringify([
    { name: "random-minilm", model: testModelDir(), threads: 1 },
    { name: "minilm", model: realModelDir(), threads: 1 },
  ]);
  let dir: string;
  let slice: { docs: number; queries: string[] };
  let server: ServerProcess;

  before(async () => {
    dir = tempDir("eval-compare-url");
    slice = writeScifactSlice(join(dir, "slice"), { firstDocs: 10, queries: 3 });
    server = await startServerProcess({ DATA_DIR: join(dir, "data"), EMBEDDING_MODELS: MODELS });
    await waitUntilReady(server.url, 300_000);
    const chunks = readFileSync(join(dir, "slice/corpus.jsonl"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((line) => {
        const doc = JSON.parse(line) as { _id: string; title: string; text: string };
        return { id: doc._id, text: `${doc.title} ${doc.text}`.trim(), document_id: doc._id };
      });
    // Version 1 with the default (random) model, version 2 re-embedded with the real one.
    const ingest = await postJson<{ job_id: string }>(`${server.url}/v1/collections/eval/chunks`, { chunks });
    assert.equal(ingest.status, 202);
    await waitForJobDone(server.url, ingest.body.job_id);
    const reembed = await postJson<{ job_id: string }>(`${server.url}/v1/collections/eval/reembed`, {
      model: "minilm",
    });
    assert.equal(reembed.status, 202);
    await waitForJobDone(server.url, reembed.body.job_id);
  });

  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("compares the active version with the next, each searched with its own model, and cuts over", async () => {
    const cli = await runEvalCli([
      "--dataset",
      join(dir, "slice"),
      "--url",
      server.url,
      "--collection",
      "eval",
      "--cutover-if-better",
      // Any result passes this bar: the cutover path, not the models, is under test here.
      "--min-delta=-1",
      "--json",
      join(dir, "url.json"),
    ]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /cutover: done, nDCG@10 B - A [+-]\d\.\d{5} >= -1; eval now reaches eval__v2/);
    const result = JSON.parse(readFileSync(join(dir, "url.json"), "utf8")) as {
      a: UrlSide;
      b: UrlSide;
      comparison: { queries: number; per_query: QueryDifference[] };
      cutover: { performed: boolean; active_version: string };
    };
    assert.deepEqual(
      [result.a.version, result.a.searched_as, result.a.active, result.a.model],
      [1, "eval", true, testModelDir()],
    );
    assert.deepEqual(
      [result.b.version, result.b.searched_as, result.b.active, result.b.model],
      [2, "eval__v2", false, realModelDir()],
    );
    // The server's default overflow policy splits long documents into windows: more points than
    // documents, but each query's hits count every document once.
    assert.ok(result.a.points > slice.docs, `${result.a.points} points for ${slice.docs} documents`);
    assert.equal(result.b.points, result.a.points);
    for (const side of [result.a, result.b]) {
      assert.equal(side.per_query.length, slice.queries.length);
      for (const row of side.per_query) assert.ok(row.hits > 0 && row.hits <= slice.docs, `${row.hits} hits`);
    }
    assert.deepEqual(
      result.comparison.per_query.map((row) => row.query_id).sort(),
      [...slice.queries].sort(),
    );
    assert.equal(result.cutover.performed, true);
    const info = await getJson<{ active_version: string }>(`${server.url}/v1/collections/eval`);
    assert.equal(info.body.active_version, "eval__v2");
  });

  it("refuses versions it cannot search or that do not exist", async () => {
    const cases: Array<[string[], RegExp]> = [
      // After the cutover the name reaches v2 and there is no v3.
      [[], /has no next version/],
      // Version 1's own name now reaches version 2.
      [["--versions", "1,2"], /Version 1 of eval cannot be searched/],
      [["--versions", "2,5"], /has no version 5/],
      [["--versions", "2"], /two version numbers/],
    ];
    for (const [args, message] of cases) {
      const cli = await runEvalCli([
        "--dataset",
        join(dir, "slice"),
        "--url",
        server.url,
        "--collection",
        "eval",
        ...args,
      ]);
      assert.equal(cli.code, 1, args.join(" "));
      assert.match(cli.stderr, message);
    }
  });
});
