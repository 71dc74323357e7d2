import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { checkpointPathFor } from "../../src/cli/ingest-checkpoint.js";
import { REPO_ROOT, tempDir, testModelDir } from "../helpers/paths.js";
import {
  postJson,
  type ServerProcess,
  startServerProcess,
  waitFor,
  waitUntilReady,
} from "../helpers/server-process.js";

/** tsx by absolute URL: `--import tsx` would be looked up from the CLI's working directory. */
const TSX = import.meta.resolve("tsx");

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI runs in its own working directory: that is where it keeps its checkpoints. */
const CLI_CWD = tempDir("cli-cwd");

function startCli(args: string[]): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, ["--import", TSX, join(REPO_ROOT, "src/cli/main.ts"), ...args], {
    cwd: CLI_CWD,
    env: { ...process.env, RAG_EMBED_URL: "", RAG_EMBED_API_KEY: "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const done = once(child, "exit").then(([code]) => ({ code: code as number | null, stdout, stderr }));
  return { child, done };
}

const runCli = (args: string[]) => startCli(args).done;

async function searchIds(url: string, collection: string): Promise<string[]> {
  const { body } = await postJson<{ hits: Array<{ id: string }> }>(
    `${url}/v1/collections/${collection}/search`,
    {
      query: "anything",
      top_k: 10_000,
    },
  );
  return body.hits.map((h) => h.id);
}

describe("rag-embed CLI against a running server", () => {
  let server: ServerProcess;
  const dir = tempDir("cli");

  before(async () => {
    server = await startServerProcess({
      DATA_DIR: join(dir, "data"),
      MAX_QUEUE_SIZE: "60",
      RESERVE_MAX_CHUNKS: "16",
    });
    await waitUntilReady(server.url);
  });
  after(async () => {
    assert.equal(await server.stop("SIGTERM"), 0);
  });

  it("ingest of a JSONL file, killed and re-run, stores each chunk once and resumes from the checkpoint", async () => {
    const file = join(dir, "chunks.jsonl");
    const lines = Array.from({ length: 600 }, (_, i) =>
      JSON.stringify({
        id: `j-${i}`,
        text: `Record ${i}: ${"dosage and administration for adults and children. ".repeat(2 + (i % 8))}`,
        doc: `d-${Math.floor(i / 6)}`,
        lang: i % 2 ? "ko" : "en",
      }),
    );
    writeFileSync(file, `${lines.join("\n")}\n`);
    const checkpoint = checkpointPathFor(file, "cli", CLI_CWD);
    assert.equal(dirname(checkpoint), CLI_CWD, "kept in the working directory, not beside the input");
    const args = ["ingest", file, "--collection", "cli", "--batch-size", "20", "--url", server.url];

    const first = startCli([...args, "--document-field", "doc"]);
    const acked = await waitFor(
      async () => {
        if (first.child.exitCode !== null)
          throw new Error("the first run finished before it could be killed");
        if (!existsSync(checkpoint)) return undefined;
        const cp = JSON.parse(readFileSync(checkpoint, "utf8")) as { records: number };
        return cp.records >= 60 ? cp : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 20, what: "the checkpoint to record 60 records" },
    );
    first.child.kill("SIGKILL");
    const killed = await first.done;
    assert.equal(killed.code, null, "killed");
    const recorded = JSON.parse(readFileSync(checkpoint, "utf8")) as {
      records: number;
      accepted: number;
      job_ids: string[];
      offset: number;
    };
    assert.ok(
      recorded.records >= acked.records && recorded.records < 600,
      `stopped part-way (${recorded.records})`,
    );
    assert.equal(recorded.accepted, recorded.records);
    assert.equal(recorded.job_ids.length, recorded.records / 20);

    const second = await runCli([...args, "--document-field", "doc", "--json"]);
    assert.equal(second.code, 0, second.stderr);
    const summary = JSON.parse(second.stdout) as Record<string, number>;
    assert.equal(summary.resumed_from_record, recorded.records, "the re-run skipped what was acknowledged");
    assert.equal(summary.records_read, 600 - recorded.records);
    assert.equal(summary.accepted, 600 - recorded.records, "only the rest was sent");
    assert.equal(summary.requests, Math.ceil((600 - recorded.records) / 20));
    assert.equal(summary.accepted_total, 600);
    assert.equal(summary.jobs, 30, "one job per request over both runs");
    assert.equal((summary.stored ?? 0) + (summary.unchanged ?? 0), 600);
    assert.equal(summary.dead, 0);
    assert.match(second.stderr, /Resuming after record/);
    assert.equal(existsSync(checkpoint), false, "the checkpoint is removed once everything is stored");

    const ids = await searchIds(server.url, "cli");
    assert.equal(ids.length, 600, "one point per chunk");
    assert.equal(new Set(ids).size, 600);

    const search = await runCli([
      "search",
      "dosage for adults",
      "--collection",
      "cli",
      "--top-k",
      "50",
      "--filter",
      '{"document_id":"d-7"}',
      "--json",
      "--url",
      server.url,
    ]);
    assert.equal(search.code, 0, search.stderr);
    const hits = (
      JSON.parse(search.stdout) as { hits: Array<{ id: string; payload: Record<string, unknown> }> }
    ).hits;
    assert.deepEqual(hits.map((h) => h.id).sort(), ["j-42", "j-43", "j-44", "j-45", "j-46", "j-47"]);
    assert.deepEqual(hits.find((h) => h.id === "j-43")?.payload.metadata, { lang: "ko" });

    const text = await runCli([
      "search",
      "dosage",
      "--collection",
      "cli",
      "--top-k",
      "3",
      "--url",
      server.url,
    ]);
    assert.equal(text.code, 0, text.stderr);
    assert.equal(text.stdout.trim().split("\n").length, 4, "a header and three hits");
  });

  it("ingests a CSV file with custom --id-field / --text-field", async () => {
    const file = join(dir, "rows.csv");
    const rows = ["doc_no,body,lang"];
    for (let i = 0; i < 50; i++)
      rows.push(`c-${i},"Body ${i}, with a comma and ""quotes""\nand a newline",${i % 2 ? "ko" : "en"}`);
    writeFileSync(file, `${rows.join("\n")}\n`);
    const result = await runCli([
      "ingest",
      file,
      "--collection",
      "csv",
      "--id-field",
      "doc_no",
      "--text-field",
      "body",
      "--batch-size",
      "16",
      "--url",
      server.url,
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /50 stored, 0 unchanged, 0 dead/);
    const ids = await searchIds(server.url, "csv");
    assert.deepEqual(new Set(ids), new Set(Array.from({ length: 50 }, (_, i) => `c-${i}`)));

    const again = await runCli([
      "ingest",
      file,
      "--collection",
      "csv",
      "--id-field",
      "doc_no",
      "--text-field",
      "body",
      "--url",
      server.url,
      "--json",
    ]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(
      (JSON.parse(again.stdout) as { unchanged: number }).unchanged,
      50,
      "re-ingest is idempotent",
    );
  });

  it("fails clearly on a record without the id field", async () => {
    const file = join(dir, "bad.jsonl");
    writeFileSync(file, '{"id":"ok","text":"fine"}\n{"text":"no id"}\n');
    const result = await runCli(["ingest", file, "--collection", "bad", "--url", server.url]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /bad\.jsonl:2: field 'id'/);
  });

  it("status --json prints /v1/status", async () => {
    const result = await runCli(["status", "--json", "--url", server.url]);
    assert.equal(result.code, 0, result.stderr);
    const status = JSON.parse(result.stdout) as {
      queue: { max_queue_size: number };
      model: { ready: boolean };
    };
    assert.equal(status.queue.max_queue_size, 60);
    assert.equal(status.model.ready, true);
    const text = await runCli(["status", "--url", server.url]);
    assert.match(text.stdout, /Queue: +\d+ queued/);
  });
});

describe("rag-embed models verify", () => {
  it("reports the random-weight test model's ONNX as MISMATCH against the published hash", async () => {
    const result = await runCli(["models", "verify", testModelDir(), "--json"]);
    assert.equal(result.code, 1);
    const report = JSON.parse(result.stdout) as {
      files: Array<{ file: string; verdict: string }>;
      known: boolean;
    };
    assert.equal(report.known, true);
    assert.equal(report.files.find((f) => f.file === "onnx/model_quantized.onnx")?.verdict, "MISMATCH");
    assert.equal(report.files.find((f) => f.file === "tokenizer.json")?.verdict, "PRESENT");
  });

  it("reports a missing tokenizer.json as MISSING", async () => {
    const dir = tempDir("model");
    mkdirSync(join(dir, "onnx"));
    writeFileSync(join(dir, "config.json"), '{"_name_or_path":"someone/other-model"}');
    writeFileSync(join(dir, "tokenizer_config.json"), "{}");
    writeFileSync(join(dir, "onnx", "model.onnx"), "not really a model");
    const result = await runCli(["models", "verify", dir]);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /MISSING +tokenizer\.json/);
    assert.match(result.stdout, /UNKNOWN +onnx\/model\.onnx/);
  });
});
