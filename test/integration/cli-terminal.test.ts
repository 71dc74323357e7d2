/**
 * `rag-embed ingest` as a person sees it: in a real pseudo-terminal (tmux), while the server it
 * waits on is restarted. The CLI must wait out the restart and finish with exit 0, its bar showing
 * chunks stored out of chunks accepted, and the summary printed below the bar.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { tempDir } from "../helpers/paths.js";
import {
  freePort,
  getJson,
  type ServerProcess,
  startServerProcess,
  waitFor,
  waitUntilReady,
} from "../helpers/server-process.js";

const REPO_MAIN = new URL("../../src/cli/main.ts", import.meta.url).pathname;
const TSX = import.meta.resolve("tsx");
/** A tmux server of this test's own, so it never touches anyone else's sessions. */
const SOCKET = `rag-embed-test-${process.pid}`;

function tmux(...args: string[]): string {
  return execFileSync("tmux", ["-L", SOCKET, ...args], { encoding: "utf8" });
}

function requireTmux(): void {
  try {
    execFileSync("tmux", ["-V"]);
  } catch {
    // Never skip silently: CI installs Debian's tmux (.ci/run); locally: apt-get install -y tmux.
    assert.fail("tmux not found: install Debian's tmux (apt-get install -y tmux)");
  }
}

const quote = (value: string) => `'${value.replaceAll("'", "'\\''")}'`;

describe("rag-embed ingest in a terminal, through a server restart", () => {
  const servers: ServerProcess[] = [];
  after(async () => {
    try {
      tmux("kill-server");
    } catch {
      // already gone
    }
    await Promise.all(servers.map((server) => server.stop("SIGKILL")));
  });

  it("waits out the restart and ends with exit 0, a full stored/accepted bar and the summary below it", async () => {
    requireTmux();
    const count = 300;
    const inputDir = tempDir("tty-input");
    const cwd = tempDir("tty-cwd");
    const input = join(inputDir, "leaflets.jsonl");
    writeFileSync(
      input,
      `${Array.from({ length: count }, (_, i) =>
        JSON.stringify({ id: `t-${i}`, text: `Leaflet ${i}: take with water; store below 25 °C.` }),
      ).join("\n")}\n`,
    );
    const port = await freePort();
    const env = { DATA_DIR: join(tempDir("tty-data"), "data"), PORT: String(port), RESERVE_MAX_CHUNKS: "16" };
    // 30 chunks/s keeps the CLI waiting for about 10 s: long enough to restart the server meanwhile.
    const first = await startServerProcess({
      ...env,
      EMBEDDING_MAX_RATE: "30",
      SHUTDOWN_TIMEOUT_SECONDS: "1",
    });
    servers.push(first);
    await waitUntilReady(first.url);

    const exitFile = join(cwd, "exit-code");
    const command = [
      `cd ${quote(cwd)}`,
      `${quote(process.execPath)} --import ${quote(TSX)} ${quote(REPO_MAIN)} ingest ${quote(input)} --collection tty --batch-size 50 --url ${quote(first.url)} --timeout 2m`,
      `echo $? > ${quote(exitFile)}`,
      "sleep 600",
    ].join("; ");
    tmux("new-session", "-d", "-s", "ingest", "-x", "150", "-y", "40", command);

    // Everything sent (the checkpoint, in the working directory, says so) and still being stored.
    const checkpointFile = await waitFor(
      async () => {
        const name = readdirSync(cwd).find((f) => f.endsWith(".rag-embed-progress.json"));
        if (!name) return undefined;
        const checkpoint = JSON.parse(readFileSync(join(cwd, name), "utf8")) as { records: number };
        return checkpoint.records === count ? name : undefined;
      },
      { what: "all records sent", intervalMs: 50 },
    );
    assert.match(checkpointFile, /^leaflets\.jsonl\.[0-9a-f]{8}\.rag-embed-progress\.json$/);
    assert.deepEqual(readdirSync(inputDir), ["leaflets.jsonl"], "nothing written beside the input");
    const pending = (await getJson<{ queue: { pending_chunks: number } }>(`${first.url}/v1/status`)).body
      .queue.pending_chunks;
    assert.ok(pending > 0, `still storing when the restart begins (${pending} pending)`);

    assert.equal(await first.stop("SIGTERM"), 0);
    await waitFor(async () => tmux("capture-pane", "-p", "-t", "ingest").includes("server unavailable"), {
      what: "the CLI to notice the server is gone",
      intervalMs: 50,
    });
    const second = await startServerProcess(env);
    servers.push(second);

    await waitFor(async () => existsSync(exitFile) && readFileSync(exitFile, "utf8").trim() !== "", {
      timeoutMs: 120_000,
      what: "the CLI to finish",
    });
    const screen = tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "ingest");
    assert.equal(readFileSync(exitFile, "utf8").trim(), "0", screen);
    assert.match(screen, /server unavailable \((503 shutting_down|no connection)\)/);
    assert.match(screen, /server is back/);
    assert.doesNotMatch(screen, /NaN|Infinity|undefined/, "every figure is a number or '?'");

    const lines = screen.split("\n");
    const barLine = lines.findIndex((line) =>
      /^█{24} 300\/300 stored \(100%\) \| sent 300\/300 \| .* chunks\/s, .* tok\/s \| ETA 0s$/.test(line),
    );
    assert.ok(barLine >= 0, `a full stored/accepted bar on screen:\n${screen}`);
    const result = lines.findIndex((line) => line.startsWith("Result:      300 stored, 0 unchanged, 0 dead"));
    assert.ok(result > barLine, `the summary below the bar:\n${screen}`);
    assert.equal(
      existsSync(join(cwd, checkpointFile)),
      false,
      "the checkpoint is removed once all is stored",
    );
  });

  it("gives up at --timeout when nothing is stored: exit 3, what is pending, the checkpoint kept", async () => {
    const cwd = tempDir("timeout-cwd");
    const input = join(cwd, "slow.jsonl");
    writeFileSync(
      input,
      `${Array.from({ length: 40 }, (_, i) => JSON.stringify({ id: `s-${i}`, text: `slow ${i}` })).join("\n")}\n`,
    );
    // One chunk a second: most of the 40 are still queued when the server is killed for good.
    const server = await startServerProcess({ DATA_DIR: join(cwd, "data"), EMBEDDING_MAX_RATE: "1" });
    servers.push(server);
    await waitUntilReady(server.url);
    const cli = spawn(
      process.execPath,
      [
        "--import",
        TSX,
        REPO_MAIN,
        "ingest",
        input,
        "--collection",
        "slow",
        "--url",
        server.url,
        "--timeout",
        "3s",
      ],
      { cwd, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    cli.stdout.on("data", (data: Buffer) => {
      stdout += data.toString();
    });
    cli.stderr.on("data", (data: Buffer) => {
      stderr += data.toString();
    });
    const exited = once(cli, "exit");
    await waitFor(async () => stderr.includes("waiting for 1 job(s)"), { what: "the CLI to wait" });
    await server.stop("SIGKILL");
    const [code] = await exited;
    assert.equal(code, 3, stderr);
    assert.match(stderr, /server unavailable \(no connection\)/);
    assert.match(
      stderr,
      /gave up waiting: nothing was stored for 3s \(--timeout\) and \d+ chunk\(s\) are still pending/,
    );
    assert.match(stdout, /Result: +\d+ stored, 0 unchanged, 0 dead, \d+ still pending/);
    assert.ok(
      readdirSync(cwd).some((f) => f.endsWith(".rag-embed-progress.json")),
      "the checkpoint is kept, to wait again later",
    );
  });
});
