import { createHash } from "node:crypto";
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { findKnownModel, type KnownModelTable } from "./known-models.js";

export type FileVerdict = "OK" | "MISMATCH" | "UNKNOWN" | "MISSING" | "PRESENT";

export interface FileCheck {
  file: string;
  verdict: FileVerdict;
  size?: number;
  sha256?: string;
  expected?: { size: number; sha256: string };
  message?: string;
}

export interface ModelReport {
  dir: string;
  model: string | undefined;
  known: boolean;
  files: FileCheck[];
  ok: boolean;
}

const REQUIRED = ["config.json", "tokenizer.json", "tokenizer_config.json"];
const ONNX_MAIN = ["onnx/model_quantized.onnx", "onnx/model.onnx"];

export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const piece of createReadStream(path)) hash.update(piece as Buffer);
  return hash.digest("hex");
}

/** Compares one file's size and hash with the published ones. Pure, for unit tests. */
export function compareFile(
  file: string,
  actual: { size: number; sha256: string },
  expected: { size: number; sha256: string } | undefined,
): FileCheck {
  if (!expected) return { file, verdict: "UNKNOWN", ...actual, message: "no published hash known" };
  if (actual.size === expected.size && actual.sha256.toLowerCase() === expected.sha256.toLowerCase()) {
    return { file, verdict: "OK", ...actual, expected };
  }
  const why =
    actual.size !== expected.size ? `size ${actual.size}, expected ${expected.size}` : "sha256 differs";
  return { file, verdict: "MISMATCH", ...actual, expected, message: why };
}

/**
 * Checks that `dir` has what transformers.js needs (config, tokenizer, an ONNX graph) and compares
 * every ONNX file with the published hashes of the model named by config `_name_or_path` or the
 * directory. OK only when nothing is missing or mismatched; UNKNOWN is a warning.
 */
export async function verifyModelDir(dir: string, table: KnownModelTable): Promise<ModelReport> {
  const root = resolve(dir);
  const files: FileCheck[] = [];
  let nameOrPath: string | undefined;
  for (const file of REQUIRED) {
    const path = join(root, file);
    if (!existsSync(path)) {
      files.push({ file, verdict: "MISSING" });
      continue;
    }
    const check: FileCheck = { file, verdict: "PRESENT", size: statSync(path).size };
    try {
      const parsed = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
      if (file === "config.json" && typeof parsed._name_or_path === "string")
        nameOrPath = parsed._name_or_path;
    } catch (error) {
      check.verdict = "MISMATCH";
      check.message = `not valid JSON: ${(error as Error).message}`;
    }
    files.push(check);
  }
  const known = findKnownModel([nameOrPath, basename(root)], table);
  const onnxDir = join(root, "onnx");
  const onnxFiles = existsSync(onnxDir)
    ? readdirSync(onnxDir)
        .filter((f) => f.endsWith(".onnx") || f.endsWith(".onnx_data"))
        .sort()
        .map((f) => `onnx/${f}`)
    : [];
  if (!onnxFiles.some((f) => ONNX_MAIN.includes(f))) {
    files.push({ file: ONNX_MAIN.join(" or "), verdict: "MISSING" });
  }
  for (const file of onnxFiles) {
    const path = join(root, file);
    const actual = { size: statSync(path).size, sha256: await sha256File(path) };
    files.push(compareFile(file, actual, known?.files[file]));
  }
  const ok = files.every((f) => f.verdict !== "MISSING" && f.verdict !== "MISMATCH");
  return { dir: root, model: nameOrPath ?? basename(root), known: known !== undefined, files, ok };
}
