import assert from "node:assert/strict";
import { test } from "node:test";
import { withSmallYoungGeneration } from "../../src/embedder/worker-embedder.js";

test("the embedder child gets 2 MB semi-spaces after the parent's own flags", () => {
  const saved = process.env.NODE_OPTIONS;
  delete process.env.NODE_OPTIONS;
  try {
    assert.deepEqual(withSmallYoungGeneration(["--import", "tsx"]), [
      "--import",
      "tsx",
      "--max-semi-space-size=2",
    ]);
  } finally {
    if (saved !== undefined) process.env.NODE_OPTIONS = saved;
  }
});

test("a semi-space size the user gives, in execArgv or NODE_OPTIONS, wins", () => {
  const saved = process.env.NODE_OPTIONS;
  try {
    delete process.env.NODE_OPTIONS;
    assert.deepEqual(withSmallYoungGeneration(["--max-semi-space-size=16"]), ["--max-semi-space-size=16"]);
    process.env.NODE_OPTIONS = "--max-semi-space-size=32";
    assert.deepEqual(withSmallYoungGeneration([]), []);
  } finally {
    if (saved === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = saved;
  }
});
