import { parseArgs } from "node:util";
import { UsageError } from "./client-options.js";
import { KNOWN_MODELS } from "./known-models.js";
import { verifyModelDir } from "./model-verify.js";

export const MODELS_USAGE = `Usage: rag-embed models verify DIR [--json]

Checks a transformers.js model directory: config.json, tokenizer.json, tokenizer_config.json and
onnx/model_quantized.onnx and/or onnx/model.onnx, and compares the sha256 of every ONNX file with the
published one for the model (named by config.json _name_or_path, or the directory name).
Per file: OK, MISMATCH, UNKNOWN (no published hash: a warning), MISSING.
Exit status 0 only when nothing is missing or mismatched.`;

export async function modelsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { json: { type: "boolean" }, help: { type: "boolean", short: "h" } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${MODELS_USAGE}\n`);
    return 0;
  }
  const [sub, dir, ...extra] = positionals;
  if (sub !== "verify" || dir === undefined || extra.length > 0) throw new UsageError(MODELS_USAGE);
  const report = await verifyModelDir(dir, KNOWN_MODELS);
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return report.ok ? 0 : 1;
  }
  const lines = [
    `Model directory: ${report.dir}`,
    `Model: ${report.model}${report.known ? "" : " (no published hashes known)"}`,
  ];
  for (const f of report.files) {
    const verdict = f.verdict === "PRESENT" ? "OK" : f.verdict;
    const hash = f.sha256 ? `  sha256 ${f.sha256}` : "";
    const note = f.message ? `  (${f.message})` : "";
    lines.push(`  ${verdict.padEnd(8)} ${f.file}${hash}${note}`);
    if (f.verdict === "MISMATCH" && f.expected)
      lines.push(`           expected sha256 ${f.expected.sha256}, ${f.expected.size} bytes`);
  }
  const unknown = report.files.filter((f) => f.verdict === "UNKNOWN").length;
  lines.push(
    report.ok
      ? `OK${unknown ? ` (${unknown} file(s) without a known hash)` : ""}`
      : "FAILED: files missing or not matching",
  );
  process.stdout.write(`${lines.join("\n")}\n`);
  return report.ok ? 0 : 1;
}
