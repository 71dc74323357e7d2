import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ModelListError, parseModelSpecs } from "../../src/config/model-specs.js";
import { loadSettings, SettingsError } from "../../src/config/settings.js";
import { tempDir } from "../helpers/paths.js";

const DEFAULTS = { dtype: "q8" as const, threads: 2, sessions: 0, baseDir: "/srv" };

describe("EMBEDDING_MODELS", () => {
  it("parses names, models and profiles; the single-model settings fill what is left out", () => {
    const specs = parseModelSpecs(
      JSON.stringify([
        { name: "minilm", model: "Xenova/all-MiniLM-L6-v2" },
        { name: "e5", model: "./models/e5", threads: 1, max_tokens: 256, passage_prefix: "passage: " },
      ]),
      DEFAULTS,
    );
    assert.deepEqual(specs, [
      {
        servedName: "minilm",
        model: "Xenova/all-MiniLM-L6-v2",
        dtype: "q8",
        threads: 2,
        sessions: 0,
        overrides: {},
      },
      {
        servedName: "e5",
        model: "/srv/models/e5",
        dtype: "q8",
        threads: 1,
        sessions: 0,
        overrides: { maxTokens: 256, passagePrefix: "passage: " },
      },
    ]);
  });

  it("reads @file", () => {
    const file = join(tempDir("model-specs"), "models.json");
    writeFileSync(file, JSON.stringify([{ name: "a", model: "/m/a" }]));
    assert.equal(parseModelSpecs(`@${file}`, DEFAULTS)[0]?.model, "/m/a");
  });

  it("refuses what is not a list of models, naming the problem", () => {
    for (const [text, pattern] of [
      ["{", /not JSON/],
      ["[]", /non-empty JSON array/],
      ['[{"name":"a"}]', /EMBEDDING_MODELS\[0\]/],
      ['[{"name":"a","model":"x","colour":"red"}]', /EMBEDDING_MODELS\[0\]/],
      ['[{"name":"a","model":"x"},{"name":"A","model":"y"}]', /twice/],
      ["@/nonexistent/models.json", /file/],
    ] as const) {
      assert.throws(
        () => parseModelSpecs(text, DEFAULTS),
        (error: unknown) => {
          assert.ok(error instanceof ModelListError);
          assert.match(error.message, pattern);
          return true;
        },
      );
    }
  });

  it("settings: EMBEDDING_MODELS replaces EMBEDDING_MODEL; without it, one model from the single settings", () => {
    const one = loadSettings({ EMBEDDING_MODEL: "/m/one", SERVED_MODEL_NAME: "one", EMBEDDING_THREADS: "3" });
    assert.deepEqual(
      one.models.map((m) => [m.servedName, m.model, m.threads]),
      [["one", "/m/one", 3]],
    );
    const two = loadSettings({
      EMBEDDING_MODELS: '[{"name":"a","model":"/m/a"},{"name":"b","model":"/m/b"}]',
    });
    assert.deepEqual(
      two.models.map((m) => m.servedName),
      ["a", "b"],
    );
    assert.throws(() => loadSettings({ EMBEDDING_MODELS: "[]" }), SettingsError);
    assert.throws(
      () =>
        loadSettings({
          EMBEDDING_MODELS: '[{"name":"a","model":"/m/a"},{"name":"b","model":"/m/b"}]',
          EMBEDDER: "remote",
          EMBEDDER_URL: "http://x",
        }),
      /EMBEDDER=remote/,
    );
  });
});
