import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ProcessingError } from "../../src/domain/errors.js";
import { assertVersionedWrites } from "../../src/vector-store/qdrant/server-version.js";

describe("assertVersionedWrites", () => {
  it("accepts Qdrant 1.15.4 and later, and versions that are not x.y.z", () => {
    for (const version of [
      "1.15.4",
      "1.15.10",
      "1.16.0",
      "1.19.0",
      "2.0.0",
      "v1.17.1",
      "1.16.0-rc1",
      "dev",
    ]) {
      assert.doesNotThrow(() => assertVersionedWrites(version), version);
    }
  });

  it("refuses older servers permanently, naming both versions", () => {
    for (const version of ["1.15.3", "1.14.1", "1.9.7", "0.11.0"]) {
      assert.throws(
        () => assertVersionedWrites(version),
        (error: unknown) =>
          error instanceof ProcessingError &&
          !error.retryable &&
          error.message.includes(`Qdrant ${version} is too old`) &&
          error.message.includes("1.15.4"),
        version,
      );
    }
  });
});
