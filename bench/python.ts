/**
 * The bench's Python side: a venv under the bench cache with the current onnxruntime, tokenizers,
 * numpy and onnx from PyPI (made on first use), and KoNLPy's Korean corpus files (its wheel, without
 * its Java dependencies). Runs reference.py and e5_int8.py in it.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CACHE_DIR, ROOT } from "./lib.js";

const VENV = join(CACHE_DIR, "venv");
const PYTHON = join(VENV, "bin", "python");

function pip(args: string[]): void {
  execFileSync(PYTHON, ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", ...args], {
    stdio: ["ignore", "inherit", "inherit"],
  });
}

/** The venv's python, created and filled on first use (a minute or two; PyPI must be reachable). */
export function ensurePython(log: (msg: string) => void): string {
  if (!existsSync(join(VENV, ".complete"))) {
    log(`setting up the Python reference in ${VENV} (pip install onnxruntime tokenizers numpy onnx konlpy)`);
    execFileSync("python3", ["-m", "venv", VENV], { stdio: "inherit" });
    pip(["onnxruntime", "tokenizers", "numpy", "onnx"]);
    // Only for its corpus files: KoNLPy's taggers need Java, which nothing here uses.
    pip(["--no-deps", "konlpy==0.6.0"]);
    writeFileSync(join(VENV, ".complete"), "");
  }
  return PYTHON;
}

/** The directory holding KoNLPy's `kolaw/` and `kobill/` corpora. */
export function konlpyCorpusDir(python: string): string {
  // find_spec locates the package without importing it (its import needs Java's JPype).
  const code =
    "import importlib.util, os; spec = importlib.util.find_spec('konlpy'); print(os.path.join(spec.submodule_search_locations[0], 'data', 'corpus'))";
  return execFileSync(python, ["-c", code], { encoding: "utf8" }).trim();
}

/** Runs a script of bench/ with a JSON config file; returns the JSON of its last output line. */
export function runPython<T>(python: string, script: string, config: object | string[]): T {
  const dir = mkdtempSync(join(tmpdir(), "rag-bench-py-"));
  try {
    let args: string[];
    if (Array.isArray(config)) {
      args = config;
    } else {
      const file = join(dir, "config.json");
      writeFileSync(file, JSON.stringify(config));
      args = [file];
    }
    const out = execFileSync(python, [join(ROOT, "bench", script), ...args], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      maxBuffer: 64 * 1024 * 1024,
    });
    const last = out.trim().split("\n").at(-1) ?? "";
    return JSON.parse(last) as T;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface ReferenceRun {
  onnxruntime: string;
  tokens: number;
  seconds: number;
  cpu_seconds: number;
  tokenize_cpu_seconds: number;
  tokens_per_s: number;
  tokens_per_cpu_s: number;
}
