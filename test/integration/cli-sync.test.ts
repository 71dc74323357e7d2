/**
 * `rag-embed sync` on a directory: one file per document; a changed file replaces its document; a
 * removed file's document is deleted with --delete-missing, and --dry-run changes nothing.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { REPO_ROOT, tempDir } from "../helpers/paths.js";
import { postJson, type ServerProcess, startServerProcess } from "../helpers/server-process.js";

const TSX = import.meta.resolve("tsx");

async function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["--import", TSX, join(REPO_ROOT, "src/cli/main.ts"), ...args], {
    cwd: tempDir("sync-cwd"),
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
  const [code] = await once(child, "exit");
  return { code: code as number | null, stdout, stderr };
}

function writeDocument(dir: string, name: string, sections: string[]): void {
  writeFileSync(
    join(dir, name),
    sections.map((text, i) => JSON.stringify({ id: `${name}-${i}`, text })).join("\n"),
  );
}

async function pointsByDocument(url: string, collection: string): Promise<Map<string, string[]>> {
  const { body } = await postJson<{ hits: Array<{ id: string; payload: { document_id: string } }> }>(
    `${url}/v1/collections/${collection}/search`,
    { query: "anything", top_k: 1000 },
  );
  const byDocument = new Map<string, string[]>();
  for (const hit of body.hits) {
    byDocument.set(
      hit.payload.document_id,
      [...(byDocument.get(hit.payload.document_id) ?? []), hit.id].sort(),
    );
  }
  return byDocument;
}

describe("rag-embed sync", () => {
  const dir = tempDir("sync");
  const source = join(dir, "source");
  let server: ServerProcess;

  before(async () => {
    mkdirSync(source, { recursive: true });
    server = await startServerProcess({ DATA_DIR: join(dir, "data") });
  });

  after(async () => {
    await server.stop("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  it("replaces each file's document, and with --delete-missing deletes a removed file's; --dry-run changes nothing", async () => {
    writeDocument(source, "a.jsonl", ["alpha one", "alpha two", "alpha three"]);
    writeDocument(source, "b.jsonl", ["beta one", "beta two"]);
    writeDocument(source, "c.jsonl", ["gamma one"]);
    const first = await runCli(["sync", source, "--collection", "synced", "--url", server.url]);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(Object.fromEntries(await pointsByDocument(server.url, "synced")), {
      "a.jsonl": ["a.jsonl-0", "a.jsonl-1", "a.jsonl-2"],
      "b.jsonl": ["b.jsonl-0", "b.jsonl-1"],
      "c.jsonl": ["c.jsonl-0"],
    });

    // a.jsonl now has one section fewer; c.jsonl is gone from the source.
    writeDocument(source, "a.jsonl", ["alpha one", "alpha two, revised"]);
    rmSync(join(source, "c.jsonl"));

    const dry = await runCli([
      "sync",
      source,
      "--collection",
      "synced",
      "--delete-missing",
      "--dry-run",
      "--json",
      "--url",
      server.url,
    ]);
    assert.equal(dry.code, 0, dry.stderr);
    const plan = JSON.parse(dry.stdout) as { missing_documents: string[]; documents: number };
    assert.deepEqual(plan.missing_documents, ["c.jsonl"]);
    assert.equal(plan.documents, 2);
    assert.equal(
      (await pointsByDocument(server.url, "synced")).get("c.jsonl")?.length,
      1,
      "--dry-run changed nothing",
    );
    assert.equal((await pointsByDocument(server.url, "synced")).get("a.jsonl")?.length, 3);

    const second = await runCli([
      "sync",
      source,
      "--collection",
      "synced",
      "--delete-missing",
      "--json",
      "--url",
      server.url,
    ]);
    assert.equal(second.code, 0, second.stderr);
    const summary = JSON.parse(second.stdout) as {
      unchanged: number;
      stored: number;
      documents_deleted: number;
    };
    assert.deepEqual(
      [summary.unchanged, summary.stored, summary.documents_deleted],
      [3, 1, 1],
      "a-0 and both of b unchanged, a-1 stored, c deleted",
    );
    assert.deepEqual(Object.fromEntries(await pointsByDocument(server.url, "synced")), {
      "a.jsonl": ["a.jsonl-0", "a.jsonl-1"],
      "b.jsonl": ["b.jsonl-0", "b.jsonl-1"],
    });
  });
});
