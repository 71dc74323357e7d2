import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { REPO_ROOT, tempDir, testModelDir } from "../helpers/paths.js";

const run = promisify(execFile);

/**
 * The package as a user gets it: `npm pack` (which builds dist/ through `prepare`), the tarball unpacked
 * into a project's node_modules, and the package imported by name from that project, outside this
 * checkout. Its dependencies are links to this checkout's node_modules (nothing is downloaded).
 */
describe("the packed package, imported by name", () => {
  let project: string;

  before(async () => {
    project = tempDir("packed");
    await run("npm", ["pack", "--pack-destination", project], {
      cwd: REPO_ROOT,
      maxBuffer: 64 * 1024 * 1024,
    });
    const [tarball] = readdirSync(project).filter((name) => name.endsWith(".tgz"));
    assert.ok(tarball, "npm pack wrote a tarball");
    const installed = join(project, "node_modules", "rag-embedding-server");
    mkdirSync(installed, { recursive: true });
    await run("tar", ["-xzf", join(project, tarball), "-C", installed, "--strip-components=1"]);
    for (const name of readdirSync(join(REPO_ROOT, "node_modules"))) {
      if (name.startsWith(".")) continue;
      symlinkSync(join(REPO_ROOT, "node_modules", name), join(project, "node_modules", name));
    }
  });

  after(() => {
    if (project) rmSync(project, { recursive: true, force: true });
  });

  /** Runs an ES module file of the project, as its own code would. */
  async function inProject(code: string): Promise<string> {
    const file = join(project, `main-${Date.now()}.mjs`);
    writeFileSync(file, code);
    const { stdout } = await run(process.execPath, [file], { cwd: project, timeout: 120_000 });
    return stdout.trim();
  }

  it("exports the SDK from rag-embedding-server/client and the server and SDK from the root", async () => {
    const out = await inProject(`
      const root = await import("rag-embedding-server");
      const client = await import("rag-embedding-server/client");
      console.log(JSON.stringify({
        startServer: typeof root.startServer,
        loadSettings: typeof root.loadSettings,
        rootClient: typeof root.RagEmbedClient,
        client: typeof client.RagEmbedClient,
        clientLoadsNoServer: !("startServer" in client),
      }));
    `);
    assert.deepEqual(JSON.parse(out), {
      startServer: "function",
      loadSettings: "function",
      rootClient: "function",
      client: "function",
      clientLoadsNoServer: true,
    });
  });

  it("ships type declarations for both entry points, and no tests or sources", () => {
    const files = readdirSync(join(project, "node_modules", "rag-embedding-server", "dist"));
    assert.ok(files.includes("index.d.ts"), files.join(", "));
    const top = readdirSync(join(project, "node_modules", "rag-embedding-server"));
    assert.deepEqual(top.sort(), ["README.md", "dist", "package.json"]);
  });

  it("starts the server from the package (compiled embedding process, ONNX runners, dashboard)", async () => {
    const dataDir = tempDir("packed-data");
    const out = await inProject(`
      import { createLogger, loadSettings, RagEmbedClient, startHttpServer } from "rag-embedding-server";
      const settings = loadSettings({
        DATA_DIR: ${JSON.stringify(dataDir)},
        EMBEDDING_MODEL: ${JSON.stringify(testModelDir())},
        EMBEDDING_THREADS: "1",
        PORT: "0",
        LOG_LEVEL: "silent",
      });
      const server = await startHttpServer(settings, createLogger("silent"));
      try {
        const model = await server.ready;
        const embeddings = await fetch(server.url + "/v1/embeddings", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: model.id, input: ["aspirin", "ibuprofen"] }),
        }).then((r) => r.json());
        const dashboard = await fetch(server.url + "/dashboard/dashboard.js").then((r) => r.status);
        const client = new RagEmbedClient({ baseUrl: server.url });
        const { jobIds } = await client.ingest("docs", [{ id: "c1", text: "Aspirin reduces fever." }]);
        const job = await client.waitForJob(jobIds[0]);
        console.log(JSON.stringify({
          vectors: embeddings.data.map((d) => d.embedding.length),
          dashboard,
          state: job.state,
        }));
      } finally {
        await server.shutdown(10_000);
      }
    `);
    assert.deepEqual(JSON.parse(out.split("\n").at(-1) ?? "{}"), {
      vectors: [384, 384],
      dashboard: 200,
      state: "done",
    });
    rmSync(dataDir, { recursive: true, force: true });
  });
});
