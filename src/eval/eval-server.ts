import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type LaunchedServer, launchServer, PACKAGE_ROOT } from "../launcher/server-launcher.js";

export interface EvalServerOptions {
  dataDir: string;
  /** Model id or local directory; default: the server's default model. */
  model?: string;
  /** Port (default 0: any free port). */
  port?: number;
  /** Extra environment for the server (tests pin threads, etc.). */
  serverEnv?: Record<string, string | undefined>;
}

/** A `rag-embed serve` child on the embedded defaults, ready (model loaded) when this resolves. */
export function startEvalServer(options: EvalServerOptions): Promise<LaunchedServer> {
  return launchServer({
    waitUntilReady: true,
    startTimeoutMs: 600_000,
    env: {
      DATA_DIR: options.dataDir,
      EMBEDDING_MODEL: options.model,
      // Hub models are cached where `npm start` caches them, not in the throw-away data dir.
      MODEL_CACHE_DIR: process.env.MODEL_CACHE_DIR ?? resolve(PACKAGE_ROOT, "data/models"),
      // MTEB truncates over-long documents.
      OVERFLOW_POLICY: "truncate",
      HOST: "127.0.0.1",
      PORT: String(options.port ?? 0),
      LOG_LEVEL: "info",
      API_KEYS: undefined,
      API_KEY_RATE_LIMIT: undefined,
      ...options.serverEnv,
    },
  });
}

/** SIGTERM, SIGKILL after a minute; a non-zero exit is reported, not thrown (the results are in). */
export async function stopEvalServer(server: LaunchedServer, log: (line: string) => void): Promise<void> {
  const code = await server.stop({ graceMs: 60_000 });
  if (code !== 0) log(`server exited with ${code}`);
}

/**
 * The server's data dir: a fresh temporary one, deleted afterwards, or `keep` (new or empty), left in
 * place so the collections can be looked at (or served) after the run.
 */
export function evalDataDir(keep: string | undefined): { dir: string; cleanup: () => void } {
  if (keep === undefined) {
    const dir = mkdtempSync(join(tmpdir(), "rag-embed-eval-"));
    return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  }
  const dir = resolve(keep);
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new Error(`--data-dir ${dir} is not empty: the eval needs a fresh data dir`);
  }
  mkdirSync(dir, { recursive: true });
  return { dir, cleanup: () => {} };
}
