import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { findKnownModel, KNOWN_MODELS, type KnownModelTable } from "../../src/cli/known-models.js";
import { compareFile, verifyModelDir } from "../../src/cli/model-verify.js";
import { recordToChunk } from "../../src/cli/record-to-chunk.js";
import { backoffMs, parseRetryAfter, retryDelayMs } from "../../src/client/retry.js";
import { tempDir } from "../helpers/paths.js";

describe("client retry helpers", () => {
  it("parses Retry-After as seconds or an HTTP date", () => {
    assert.equal(parseRetryAfter("5"), 5);
    assert.equal(parseRetryAfter(null), undefined);
    assert.equal(parseRetryAfter("soon"), undefined);
    const now = Date.parse("2025-01-01T00:00:00Z");
    assert.equal(parseRetryAfter("Wed, 01 Jan 2025 00:00:10 GMT", now), 10);
  });
  it("caps and jitters the wait", () => {
    const opts = { fallbackMs: 1000, capMs: 30_000, jitter: 0.2 };
    assert.equal(retryDelayMs(5, { ...opts, random: () => 0.5 }), 5000);
    assert.equal(retryDelayMs(5, { ...opts, random: () => 0 }), 4000);
    assert.equal(retryDelayMs(5, { ...opts, random: () => 1 }), 6000);
    assert.equal(retryDelayMs(300, { ...opts, random: () => 0.5 }), 30_000);
    assert.equal(retryDelayMs(undefined, { ...opts, random: () => 0.5 }), 1000);
  });

  it("backs off with full jitter: anywhere from 0 to the capped step", () => {
    assert.equal(
      backoffMs(3, 250, 10_000, () => 0),
      0,
    );
    assert.equal(
      backoffMs(3, 250, 10_000, () => 0.5),
      1000,
    );
    assert.equal(
      backoffMs(3, 250, 10_000, () => 1),
      2000,
    );
    assert.equal(
      backoffMs(10, 250, 10_000, () => 1),
      10_000,
    );
    assert.equal(
      backoffMs(-1, 250, 10_000, () => 1),
      250,
    );
  });
});

describe("recordToChunk", () => {
  const mapping = { idField: "id", textField: "text", documentField: "doc" };
  it("maps fields and keeps the rest as metadata", () => {
    assert.deepEqual(recordToChunk({ id: "a", text: "hello", doc: "d", lang: "ko" }, mapping), {
      ok: true,
      chunk: { id: "a", text: "hello", document_id: "d", metadata: { lang: "ko" } },
    });
    assert.deepEqual(recordToChunk({ id: 7, text: "x" }, { ...mapping, metadata: false }), {
      ok: true,
      chunk: { id: 7, text: "x" },
    });
  });
  it("refuses a missing id or text, and flags empty text", () => {
    assert.equal(recordToChunk({ text: "x" }, mapping).ok, false);
    assert.equal(recordToChunk({ id: "a" }, mapping).ok, false);
    const empty = recordToChunk({ id: "a", text: "  " }, mapping);
    assert.equal(!empty.ok && empty.reason, "empty_text");
  });
});

describe("model verification with an injected hash table", () => {
  it("compares size and sha256", () => {
    const expected = { size: 3, sha256: "ab" };
    assert.equal(compareFile("f", { size: 3, sha256: "AB" }, expected).verdict, "OK");
    assert.equal(compareFile("f", { size: 4, sha256: "ab" }, expected).verdict, "MISMATCH");
    assert.equal(compareFile("f", { size: 3, sha256: "cd" }, expected).verdict, "MISMATCH");
    assert.equal(compareFile("f", { size: 3, sha256: "cd" }, undefined).verdict, "UNKNOWN");
  });
  it("finds models by hub id, by last segment and by directory name", () => {
    assert.ok(findKnownModel(["Xenova/all-MiniLM-L6-v2"], KNOWN_MODELS));
    assert.ok(findKnownModel([undefined, "all-minilm-l6-v2"], KNOWN_MODELS));
    assert.equal(findKnownModel(["intfloat/e5-small"], KNOWN_MODELS), undefined);
  });
  it("passes a directory whose files match the table", async () => {
    const dir = join(tempDir("verify"), "tiny-model");
    mkdirSync(join(dir, "onnx"), { recursive: true });
    writeFileSync(join(dir, "config.json"), '{"_name_or_path":"acme/tiny-model"}');
    writeFileSync(join(dir, "tokenizer.json"), "{}");
    writeFileSync(join(dir, "tokenizer_config.json"), "{}");
    const bytes = Buffer.from("onnx bytes");
    writeFileSync(join(dir, "onnx", "model_quantized.onnx"), bytes);
    const table: KnownModelTable = [
      {
        names: ["acme/tiny-model"],
        files: {
          "onnx/model_quantized.onnx": {
            size: bytes.length,
            sha256: createHash("sha256").update(bytes).digest("hex"),
          },
        },
      },
    ];
    const ok = await verifyModelDir(dir, table);
    assert.equal(ok.ok, true);
    assert.equal(ok.files.find((f) => f.file === "onnx/model_quantized.onnx")?.verdict, "OK");

    writeFileSync(join(dir, "onnx", "model_quantized.onnx"), "tampered!!");
    const bad = await verifyModelDir(dir, table);
    assert.equal(bad.ok, false);
    assert.equal(bad.files.find((f) => f.file === "onnx/model_quantized.onnx")?.verdict, "MISMATCH");
  });
});
