import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** The random-weight MiniLM in ../shared/models: real graph and tokenizer, meaningless vectors. */
export function testModelDir(): string {
  const dir = process.env.TEST_MODEL_DIR ?? resolve(REPO_ROOT, "../shared/models/test-random-minilm-l6");
  if (!existsSync(join(dir, "onnx"))) {
    throw new Error(
      `Test model not found at ${dir}; set TEST_MODEL_DIR to a transformers.js model directory`,
    );
  }
  return dir;
}

/** A model directory in ../shared/models; fails with what to fix when it is not there. */
export function sharedModelDir(name: "multilingual-e5-small-q4" | "all-MiniLM-L6-v2"): string {
  const dir = resolve(REPO_ROOT, "../shared/models", name);
  if (!existsSync(join(dir, "onnx")))
    throw new Error(`Model ${name} not found at ${dir} (see ../shared/models/README.md)`);
  return dir;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `rag-embed-${prefix}-`));
}

/** The real all-MiniLM-L6-v2 tokenizer files (no weights): what a remote engine serving it counts with. */
export function tokenizerDir(): string {
  return resolve(REPO_ROOT, "../shared/models/tokenizers/all-MiniLM-L6-v2");
}

/** The real all-MiniLM-L6-v2 (the published Xenova int8 ONNX), for tests that compare vectors. */
export function realModelDir(): string {
  return resolve(REPO_ROOT, "../shared/models/all-MiniLM-L6-v2");
}
