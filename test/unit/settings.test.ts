import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { envName, flagName, loadSettings, SettingsError, settingKeys } from "../../src/config/settings.js";
import { REPO_ROOT } from "../helpers/paths.js";

describe("settings", () => {
  it("defaults match the documented seed defaults", () => {
    const settings = loadSettings({});
    assert.equal(settings.host, "127.0.0.1");
    assert.equal(settings.port, 8000);
    assert.equal(settings.embeddingModel, "Xenova/all-MiniLM-L6-v2");
    assert.equal(settings.qdrantCollection, "test");
    assert.equal(settings.embeddingMaxRate, 0);
  });

  it("reads env vars, converts types, and lets CLI flags win", () => {
    const settings = loadSettings(
      { PORT: "9001", MAX_QUEUE_SIZE: "50", EMBEDDING_MAX_RATE: "2.5" },
      { port: "9002" },
    );
    assert.equal(settings.port, 9002);
    assert.equal(settings.maxQueueSize, 50);
    assert.equal(settings.embeddingMaxRate, 2.5);
  });

  it("refuses invalid values naming the env var and the flag", () => {
    assert.throws(
      () => loadSettings({ MAX_QUEUE_SIZE: "lots" }),
      (error: unknown) =>
        error instanceof SettingsError &&
        error.message.includes("MAX_QUEUE_SIZE") &&
        error.message.includes("--max-queue-size"),
    );
    assert.throws(() => loadSettings({ PORT: "70000" }), SettingsError);
    assert.throws(() => loadSettings({ QDRANT_COLLECTION: "no spaces allowed" }), SettingsError);
  });

  it("derives names consistently", () => {
    assert.equal(envName("maxParallelTasks"), "MAX_PARALLEL_TASKS");
    assert.equal(flagName("maxParallelTasks"), "max-parallel-tasks");
  });

  it("every setting is documented in the README with its env var and flag", () => {
    const readme = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
    for (const key of settingKeys()) {
      assert.ok(readme.includes(`\`${envName(key)}\``), `README documents ${envName(key)}`);
      assert.ok(readme.includes(`\`--${flagName(key)}\``), `README documents --${flagName(key)}`);
    }
  });
});
