/**
 * Logs a person can read: what happens in a server's normal life (a probe before the model is
 * loaded, a full queue, a SIGTERM in the middle of a batch) is logged at info/warn without stack
 * traces; LOG_FORMAT=pretty gives readable lines instead of JSON.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { describe, it } from "node:test";
import { loadSettings } from "../../src/config/settings.js";
import type { Embedder } from "../../src/embedder/embedder.js";
import { startHttpServer } from "../../src/main.js";
import { createLogger } from "../../src/observability/logger.js";
import { waitForJobDone } from "../helpers/fixtures.js";
import { REPO_ROOT, tempDir, testModelDir } from "../helpers/paths.js";
import { getJson, postJson, startServerProcess, waitFor, waitUntilReady } from "../helpers/server-process.js";

type LogLine = Record<string, unknown> & { level: number; msg: string };

function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** The real embedder, but load() and embed() wait until the test opens their gates. */
function gated(inner: Embedder, load: Promise<void>, embed: Promise<void>): Embedder {
  return new Proxy(inner, {
    get(target, property) {
      if (property === "load") {
        return async () => {
          await load;
          return target.load();
        };
      }
      if (property === "embed") {
        return async (...args: Parameters<Embedder["embed"]>) => {
          await embed;
          return target.embed(...args);
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

function assertNoStacksOrErrors(lines: LogLine[]): void {
  const loud = lines.filter((line) => line.level >= 50);
  assert.deepEqual(loud, [], "nothing at error level or above");
  const withStack = lines.filter((line) => JSON.stringify(line).includes('"stack"'));
  assert.deepEqual(withStack, [], "no stack traces");
}

const longChunks = (count: number, prefix: string) =>
  Array.from({ length: count }, (_, i) => ({
    id: `${prefix}-${i}`,
    text: `Leaflet ${i}: ${"keep out of the reach of children; store below 25 °C. ".repeat(16)}`,
  }));

describe("quiet logs", () => {
  it("a probe before the model is loaded and a full queue log at info, without stacks", async () => {
    const lines: LogLine[] = [];
    const logger = createLogger("info", {
      destination: { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) },
    });
    const load = gate();
    const embed = gate();
    const settings = loadSettings({
      DATA_DIR: tempDir("quiet"),
      EMBEDDING_MODEL: testModelDir(),
      EMBEDDING_THREADS: "1",
      PORT: "0",
      MAX_QUEUE_SIZE: "10",
    });
    const server = await startHttpServer(settings, logger, {
      decorateEmbedder: (inner) => gated(inner, load.promise, embed.promise),
    });
    try {
      for (let i = 0; i < 3; i++) {
        const ready = await fetch(`${server.url}/ready`);
        assert.equal(ready.status, 503, "not ready while the model loads");
      }
      load.open();
      await server.ready;
      const first = await postJson<{ job_id: string }>(`${server.url}/v1/collections/q/chunks`, {
        chunks: longChunks(10, "a"),
      });
      assert.equal(first.status, 202);
      const full = await postJson(`${server.url}/v1/collections/q/chunks`, { chunks: longChunks(1, "b") });
      assert.equal(full.status, 429, "the queue holds MAX_QUEUE_SIZE chunks while embedding waits");
      embed.open();
      await waitForJobDone(server.url, first.body.job_id);
    } finally {
      load.open();
      embed.open();
      await server.shutdown(5_000);
    }

    const refused = lines.filter((line) => line.msg === "request refused");
    assert.deepEqual(
      [...new Set(refused.map((line) => `${line.level} ${String(line.code)}`))].sort(),
      ["30 model_not_ready", "30 queue_full"],
      "both refusals at info",
    );
    assertNoStacksOrErrors(lines);
  });

  it("SIGTERM in the middle of a batch: the interrupted embed is a warning without a stack, exit 0", async () => {
    const server = await startServerProcess({
      DATA_DIR: tempDir("quiet-sigterm"),
      RESERVE_MAX_CHUNKS: "512",
      // Release in-flight work at once, so the embed still running is interrupted by the shutdown.
      SHUTDOWN_TIMEOUT_SECONDS: "0",
    });
    await waitUntilReady(server.url);
    const accepted = await postJson(`${server.url}/v1/collections/q/chunks`, {
      chunks: longChunks(600, "s"),
    });
    assert.equal(accepted.status, 202);
    await waitFor(
      async () =>
        (await getJson<{ queue: { running_chunks: number } }>(`${server.url}/v1/status`)).body.queue
          .running_chunks > 0,
      { intervalMs: 20, what: "a batch in flight" },
    );
    assert.equal(await server.stop("SIGTERM"), 0);

    const lines = server.logs as LogLine[];
    const interrupted = lines.filter((line) =>
      /embedder (is )?closed/.test(String((line.err as { message?: string } | undefined)?.message)),
    );
    assert.ok(interrupted.length > 0, "the interrupted embed is logged");
    assert.ok(
      interrupted.every((line) => line.level === 40),
      "as a warning",
    );
    assertNoStacksOrErrors(lines);
  });

  it("LOG_FORMAT=pretty prints readable lines, not JSON", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "serve"], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        EMBEDDING_MODEL: testModelDir(),
        EMBEDDING_THREADS: "1",
        DATA_DIR: join(tempDir("pretty"), "data"),
        PORT: "0",
        LOG_FORMAT: "pretty",
        LOG_LEVEL: "info",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    child.stdout.on("data", (data: Buffer) => {
      stdout += data.toString();
    });
    const exited = once(child, "exit");
    try {
      await waitFor(async () => /model loaded; pipeline started/.test(stdout), {
        what: "the pretty 'model loaded' line",
      });
    } finally {
      child.kill("SIGTERM");
    }
    const [code] = await exited;
    assert.equal(code, 0);
    const lines = stdout.split("\n").filter((line) => line.trim() !== "");
    const parsesAsJson = lines.filter((line) => {
      try {
        JSON.parse(line);
        return true;
      } catch {
        return false;
      }
    });
    assert.deepEqual(parsesAsJson, [], "no JSON lines");
    assert.match(stdout, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO.*: listening$/m, "time, level and message first");
    assert.match(stdout, /^ {4}url: "http:\/\/127\.0\.0\.1:\d+"$/m, "fields indented below");
    assert.match(stdout, /INFO.*: stopped/, "down to the last line before exit");
    assert.ok(!stdout.includes("\u001b["), "no colour codes when stdout is not a terminal");
  });
});
