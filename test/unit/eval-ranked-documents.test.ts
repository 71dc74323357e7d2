import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SearchHit } from "../../src/client/types.js";
import { rankedDocuments } from "../../src/eval/score-collection.js";

const hit = (id: string, score: number, parent?: string): SearchHit => ({
  id,
  point_id: `p-${id}`,
  score,
  payload: parent === undefined ? {} : { parent_chunk_id: parent, window_index: 1 },
});

describe("search hits as judged documents", () => {
  it("a window stands for its chunk, counted once at its best rank", () => {
    const docs = rankedDocuments([
      hit("a#1", 0.9, "a"),
      hit("b", 0.8),
      hit("a", 0.7),
      hit("a#2", 0.6, "a"),
      hit("c#0", 0.5, "c"),
    ]);
    assert.deepEqual(docs, [
      { docId: "a", score: 0.9 },
      { docId: "b", score: 0.8 },
      { docId: "c", score: 0.5 },
    ]);
  });

  it("an id with '#' that is not a window is its own document", () => {
    assert.deepEqual(rankedDocuments([hit("x#1", 0.4)]), [{ docId: "x#1", score: 0.4 }]);
  });
});
