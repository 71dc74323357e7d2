import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { canonicalJson, pointId, sha256, windowPointId } from "../../src/domain/ids.js";
import { modelFingerprint } from "../../src/domain/model-binding.js";
import type { ModelInfo, Payload, PointFingerprint, QueuedChunk } from "../../src/domain/types.js";
import type { EmbeddedWindow } from "../../src/embedder/embedder.js";
import { chunkContentHash, embeddedChunk, type Plan, planChunks } from "../../src/pipeline/point-planner.js";
import { parentTextFrom } from "../../src/vector-store/window-text.js";

const MODEL: ModelInfo = {
  id: "Xenova/all-MiniLM-L6-v2",
  profile: "all-MiniLM-L6",
  dimension: 2,
  maxTokens: 256,
  pooling: "mean",
  normalize: true,
  prefixes: { passage: "", query: "" },
  dtype: "q8",
};
const IDS = { model: MODEL.id, profile: MODEL.profile };

function chunk(overrides: Partial<QueuedChunk> = {}): QueuedChunk {
  return {
    chunkId: "c-1",
    text: "Acetaminophen 500 mg tablets",
    documentId: "doc-1",
    payload: { name: "Tylenol" },
    estimatedTokens: 8,
    overflow: { policy: "truncate", overlapTokens: 0 },
    seq: 10,
    version: 10,
    jobId: "job-1",
    collection: "docs",
    attempts: 0,
    ...overrides,
  };
}

/** The fingerprint a store would hold for `stored` written at `version`. */
function storedAs(stored: QueuedChunk, version: number | null): Map<string, PointFingerprint> {
  return new Map([
    [
      pointId(stored.collection, stored.chunkId),
      {
        contentHash: chunkContentHash(stored, MODEL, "whole"),
        payloadHash: sha256(canonicalJson(stored.payload)),
        version,
      },
    ],
  ]);
}

function kinds(plan: Plan): Array<[number, string]> {
  return [
    ...plan.ready.map((p): [number, string] => [p.seq, `${p.write?.kind ?? "none"}/${p.outcome.state}`]),
    ...plan.toEmbed.map((e): [number, string] => [e.chunk.seq, "embed"]),
  ];
}

describe("planChunks", () => {
  it("embeds a chunk the store has never seen", () => {
    const c = chunk();
    const plan = planChunks([c], MODEL, new Map());
    assert.deepEqual(plan.ready, []);
    assert.deepEqual(plan.toEmbed, [
      {
        chunk: c,
        contentHashes: {
          whole: chunkContentHash(c, MODEL, "whole"),
          windows: chunkContentHash(c, MODEL, "windows"),
        },
        payloadHash: sha256(canonicalJson(c.payload)),
      },
    ]);
  });

  it("a newer version stored: superseded, nothing written, nothing embedded", () => {
    const c = chunk({ version: 10 });
    const plan = planChunks([c], MODEL, storedAs(chunk({ text: "newer text" }), 11));
    assert.deepEqual(plan, {
      ready: [
        {
          seq: 10,
          collection: "docs",
          documentId: "doc-1",
          write: null,
          outcome: { seq: 10, state: "superseded", ...IDS },
        },
      ],
      toEmbed: [],
    });
  });

  it("same content and payload at an older version: touch without payload, unchanged", () => {
    const c = chunk({ version: 10 });
    const plan = planChunks([c], MODEL, storedAs(chunk(), 4));
    assert.deepEqual(plan, {
      ready: [
        {
          seq: 10,
          collection: "docs",
          documentId: "doc-1",
          write: {
            kind: "touch",
            chunkId: "c-1",
            version: 10,
            contentHash: chunkContentHash(c, MODEL, "whole"),
            payload: null,
          },
          outcome: { seq: 10, state: "unchanged", ...IDS },
        },
      ],
      toEmbed: [],
    });
  });

  it("a chunk below its document's floor is superseded (replaced) or cancelled (deleted), not embedded", () => {
    const c = chunk({ version: 10 });
    const replaced = planChunks(
      [c],
      MODEL,
      new Map(),
      new Map([["doc-1", { version: 11, kind: "replace" as const }]]),
    );
    assert.deepEqual(
      replaced.ready.map((p) => [p.write, p.outcome.state]),
      [[null, "superseded"]],
    );
    assert.deepEqual(replaced.toEmbed, []);
    const deleted = planChunks(
      [c],
      MODEL,
      new Map(),
      new Map([["doc-1", { version: 12, kind: "delete" as const }]]),
    );
    assert.deepEqual(
      deleted.ready.map((p) => [p.write, p.outcome.state]),
      [[null, "cancelled"]],
    );
    const atFloor = planChunks(
      [c],
      MODEL,
      new Map(),
      new Map([["doc-1", { version: 10, kind: "replace" as const }]]),
    );
    assert.equal(atFloor.toEmbed.length, 1, "the replacement's own chunks (at the floor) are embedded");
  });

  it("a point written before versions existed counts as older", () => {
    assert.deepEqual(kinds(planChunks([chunk()], MODEL, storedAs(chunk(), null))), [[10, "touch/unchanged"]]);
  });

  it("same content, another payload, unsplit: touch with the payload, stored with 0 tokens", () => {
    const c = chunk({ payload: { name: "Tylenol 500" }, documentId: "doc-2" });
    const plan = planChunks([c], MODEL, storedAs(chunk(), 4));
    assert.deepEqual(plan.ready, [
      {
        seq: 10,
        collection: "docs",
        documentId: "doc-2",
        write: {
          kind: "touch",
          chunkId: "c-1",
          version: 10,
          contentHash: chunkContentHash(c, MODEL, "whole"),
          payload: {
            payload: { name: "Tylenol 500" },
            payloadHash: sha256(canonicalJson({ name: "Tylenol 500" })),
            documentId: "doc-2",
          },
        },
        outcome: { seq: 10, state: "stored", tokens: 0, truncatedTokens: 0, windows: 1, ...IDS },
      },
    ]);
    assert.deepEqual(plan.toEmbed, []);
  });

  it("same content, another payload, split policy: embedded again (every window carries the payload)", () => {
    const split = { policy: "split", overlapTokens: 32 } as const;
    const plan = planChunks(
      [chunk({ overflow: split, payload: { name: "new" } })],
      MODEL,
      storedAs(chunk({ overflow: split }), 4),
    );
    assert.deepEqual(kinds(plan), [[10, "embed"]]);
  });

  it("other content at an older version: embedded", () => {
    assert.deepEqual(kinds(planChunks([chunk()], MODEL, storedAs(chunk({ text: "old text" }), 4))), [
      [10, "embed"],
    ]);
  });

  it("the stored version equal to the chunk's (written, not acked): embedded again", () => {
    assert.deepEqual(kinds(planChunks([chunk({ version: 10 })], MODEL, storedAs(chunk(), 10))), [
      [10, "embed"],
    ]);
  });

  it("two versions of a chunk in one reservation: the older is superseded without embedding", () => {
    const older = chunk({ seq: 3, version: 3 });
    const newer = chunk({ seq: 9, version: 9, text: "newer" });
    const elsewhere = chunk({ seq: 4, version: 4, collection: "other" });
    assert.deepEqual(kinds(planChunks([older, newer, elsewhere], MODEL, new Map())), [
      [3, "none/superseded"],
      [9, "embed"],
      [4, "embed"],
    ]);
  });
});

describe("chunkContentHash", () => {
  it("is the hash the previous release stored, so an upgrade does not re-embed everything", () => {
    const c = chunk({ overflow: { policy: "split", overlapTokens: 32 } });
    assert.equal(
      chunkContentHash(c, MODEL, "windows"),
      "1d5e104b4f415bf5451fa791a123af706da2cc94cacc05e522f8cc4074a6a4b1",
    );
  });

  it("changes with the text and with everything that shapes the vectors", () => {
    const base = chunkContentHash(chunk(), MODEL, "whole");
    const variants = [
      chunkContentHash(chunk({ text: "other" }), MODEL, "whole"),
      chunkContentHash(chunk(), { ...MODEL, id: "other-model" }, "whole"),
      chunkContentHash(chunk(), { ...MODEL, prefixes: { passage: "passage: ", query: "" } }, "whole"),
      chunkContentHash(chunk(), { ...MODEL, maxTokens: 512 }, "whole"),
      chunkContentHash(chunk(), { ...MODEL, dtype: "fp32" }, "whole"),
      chunkContentHash(chunk(), { ...MODEL, pooling: "cls" }, "whole"),
      chunkContentHash(chunk(), { ...MODEL, normalize: false }, "whole"),
      chunkContentHash(chunk({ overflow: { policy: "split", overlapTokens: 0 } }), MODEL, "whole"),
      chunkContentHash(chunk(), MODEL, "windows"),
    ];
    assert.equal(new Set([base, ...variants]).size, variants.length + 1);
    assert.equal(chunkContentHash(chunk({ payload: { other: 1 }, seq: 99 }), MODEL, "whole"), base);
  });

  it("hashes the overlap only for a chunk cut into windows", () => {
    const overlap = (overlapTokens: number) => chunk({ overflow: { policy: "split", overlapTokens } });
    assert.equal(
      chunkContentHash(overlap(16), MODEL, "whole"),
      chunkContentHash(overlap(32), MODEL, "whole"),
    );
    assert.notEqual(
      chunkContentHash(overlap(16), MODEL, "windows"),
      chunkContentHash(overlap(32), MODEL, "windows"),
    );
  });
});

describe("a changed SPLIT_OVERLAP_TOKENS", () => {
  /** Plans `written` on an empty store, embeds it as `windows` says, and returns the stored fingerprint. */
  function storeEmbedded(
    written: QueuedChunk,
    windows: EmbeddedWindow[] | null,
  ): Map<string, PointFingerprint> {
    const [toEmbed] = planChunks([written], MODEL, new Map()).toEmbed;
    assert.ok(toEmbed);
    const vector = Float32Array.from([1, 0]);
    const { planned } = embeddedChunk(toEmbed, { vector, tokens: 9, truncatedTokens: 0, windows }, MODEL);
    assert.equal(planned.write?.kind, "points");
    const [record] = planned.write.kind === "points" ? planned.write.records : [];
    assert.ok(record);
    return new Map([
      [
        record.id,
        { contentHash: record.contentHash, payloadHash: record.payloadHash, version: record.version },
      ],
    ]);
  }
  const at = (version: number, overlapTokens: number) =>
    chunk({ seq: version, version, overflow: { policy: "split", overlapTokens } });

  it("does not re-embed a chunk that was embedded whole", () => {
    const stored = storeEmbedded(at(4, 16), null);
    assert.deepEqual(kinds(planChunks([at(10, 32)], MODEL, stored)), [[10, "touch/unchanged"]]);
  });

  it("re-embeds a chunk that was cut into windows", () => {
    const windows = [
      { text: "Acetaminophen 500", vector: Float32Array.from([1, 0]), tokens: 6 },
      { text: "500 mg tablets", vector: Float32Array.from([0, 1]), tokens: 6 },
    ];
    const stored = storeEmbedded(at(4, 16), windows);
    assert.deepEqual(kinds(planChunks([at(10, 32)], MODEL, stored)), [[10, "embed"]]);
    assert.deepEqual(kinds(planChunks([at(10, 16)], MODEL, stored)), [[10, "touch/unchanged"]]);
  });

  it("keeps the stored hash on a touch, so a split chunk's points still say how they were cut", () => {
    const legacy = new Map([
      [
        pointId("docs", "c-1"),
        {
          contentHash: chunkContentHash(at(4, 16), MODEL, "windows"),
          payloadHash: sha256(canonicalJson({ name: "Tylenol" })),
          version: 4,
        },
      ],
    ]);
    const [touched] = planChunks([at(10, 16)], MODEL, legacy).ready;
    assert.equal(touched?.write?.kind, "touch");
    assert.equal(
      touched.write.kind === "touch" ? touched.write.contentHash : "",
      chunkContentHash(at(4, 16), MODEL, "windows"),
    );
  });
});

describe("embeddedChunk", () => {
  const plan = (c: QueuedChunk) => ({
    chunk: c,
    contentHashes: {
      whole: chunkContentHash(c, MODEL, "whole"),
      windows: chunkContentHash(c, MODEL, "windows"),
    },
    payloadHash: sha256(canonicalJson(c.payload)),
  });

  it("an unsplit chunk becomes one point under the chunk's own id, at its version", () => {
    const c = chunk();
    const vector = Float32Array.from([1, 0]);
    const { planned, tokens } = embeddedChunk(
      plan(c),
      { vector, tokens: 9, truncatedTokens: 2, windows: null },
      MODEL,
    );
    assert.equal(tokens, 9);
    assert.deepEqual(planned, {
      seq: 10,
      collection: "docs",
      documentId: "doc-1",
      write: {
        kind: "points",
        chunkId: "c-1",
        version: 10,
        records: [
          {
            id: pointId("docs", "c-1"),
            chunkId: "c-1",
            parentChunkId: null,
            windowIndex: null,
            version: 10,
            documentId: "doc-1",
            vector,
            payload: { name: "Tylenol" },
            contentHash: chunkContentHash(c, MODEL, "whole"),
            payloadHash: sha256(canonicalJson({ name: "Tylenol" })),
            // The model's profile fingerprint: the collection's binding checks it on write.
            modelFingerprint: modelFingerprint(MODEL),
          },
        ],
      },
      outcome: { seq: 10, state: "stored", tokens: 9, truncatedTokens: 2, windows: 1, ...IDS },
    });
  });

  it("a split chunk becomes one point per window; window 0 keeps the chunk's id, the index is data", () => {
    const c = chunk({ overflow: { policy: "split", overlapTokens: 4 } });
    const windows = [
      { text: "Acetaminophen 500", vector: Float32Array.from([1, 0]), tokens: 6 },
      { text: "500 mg tablets", vector: Float32Array.from([0, 1]), tokens: 5 },
    ];
    const { planned, tokens } = embeddedChunk(
      plan(c),
      { vector: windows[0]!.vector, tokens: 9, truncatedTokens: 0, windows },
      MODEL,
    );
    assert.equal(tokens, 11, "tokens embedded: the windows' sum, overlap included");
    assert.deepEqual(planned.outcome, {
      seq: 10,
      state: "stored",
      tokens: 9,
      truncatedTokens: 0,
      windows: 2,
      ...IDS,
    });
    assert.equal(planned.write?.kind, "points");
    const records = planned.write.records;
    assert.deepEqual(
      records.map((r) => [r.id, r.chunkId, r.parentChunkId, r.windowIndex, r.version, r.payload]),
      [
        [
          pointId("docs", "c-1"),
          "c-1#0",
          "c-1",
          0,
          10,
          {
            name: "Tylenol",
            parent_chunk_id: "c-1",
            window_index: 0,
            window_count: 2,
            window_text: "Acetaminophen 500",
          },
        ],
        [
          windowPointId("docs", "c-1", 1),
          "c-1#1",
          "c-1",
          1,
          10,
          {
            name: "Tylenol",
            parent_chunk_id: "c-1",
            window_index: 1,
            window_count: 2,
            window_text: "500 mg tablets",
          },
        ],
      ],
    );
    assert.deepEqual(
      records.map((r) => r.window),
      [{ start: 0, parent: { length: 28, gaps: [] } }, { start: 14 }],
      "each window says where it starts; window 0 how long the text is and what no window covers",
    );
  });

  it("windows leave out the payload fields holding the chunk's text, stored once across their own texts", () => {
    const text =
      "  제1조(목적) 이 약관은 서비스 이용 조건을 정한다.\n\n제2조(정의) 회원이란 약관에 동의한 자를 말한다. ";
    const cases: Array<{ payload: Payload; kept: Payload }> = [
      // Native: `text` is the chunk's text.
      {
        payload: { chunk_id: "c-1", text, metadata: { lang: "ko" } },
        kept: { chunk_id: "c-1", metadata: { lang: "ko" } },
      },
      // Seed: the embedded text is `name | contents`.
      {
        payload: { docId: "c-1", name: "약관", contents: text.slice(5), meta: null },
        kept: { docId: "c-1", name: "약관", meta: null },
      },
      // A `text` field that is not the chunk's text is the client's own data: kept.
      { payload: { text: "요약: 이용 조건" }, kept: { text: "요약: 이용 조건" } },
    ];
    for (const { payload, kept } of cases) {
      const c = chunk({ text, payload, overflow: { policy: "split", overlapTokens: 0 } });
      const windows = [
        "제1조(목적) 이 약관은",
        "서비스 이용 조건을 정한다.",
        "제2조(정의) 회원이란 약관에 동의한 자를 말한다.",
      ].map((windowText, index) => ({ text: windowText, vector: Float32Array.from([1, index]), tokens: 5 }));
      const { planned } = embeddedChunk(
        plan(c),
        { vector: windows[0]!.vector, tokens: 40, truncatedTokens: 0, windows },
        MODEL,
      );
      assert.equal(planned.write?.kind, "points");
      const records = planned.write.records;
      for (const [index, record] of records.entries()) {
        assert.deepEqual(record.payload, {
          ...kept,
          parent_chunk_id: "c-1",
          window_index: index,
          window_count: 3,
          window_text: windows[index]!.text,
        });
      }
      assert.deepEqual(records[0]?.window?.parent?.gaps, [
        [0, "  "],
        [text.indexOf(" 서비스"), " "],
        [text.indexOf("\n\n"), "\n\n"],
        [text.length - 1, " "],
      ]);
      const stored = records.map((r) => ({
        version: r.version,
        text: r.payload.window_text,
        window: r.window,
      }));
      assert.equal(parentTextFrom(stored), text, "the windows give the chunk's text back exactly");
    }
  });

  it("a pooled chunk becomes one point: the chunk's payload, the normalised mean of its windows", () => {
    const c = chunk({
      overflow: { policy: "pool", overlapTokens: 4 },
      payload: { text: "Acetaminophen 500 mg tablets" },
    });
    const windows = [
      { text: "Acetaminophen 500", vector: Float32Array.from([1, 0]), tokens: 6 },
      { text: "500 mg", vector: Float32Array.from([0.6, 0.8]), tokens: 4 },
      { text: "mg tablets", vector: Float32Array.from([0, 1]), tokens: 5 },
    ];
    const { planned, tokens } = embeddedChunk(
      plan(c),
      { vector: windows[0]!.vector, tokens: 9, truncatedTokens: 0, windows },
      MODEL,
    );
    assert.equal(tokens, 15, "every window was embedded");
    assert.deepEqual(planned.outcome, {
      seq: 10,
      state: "stored",
      tokens: 9,
      truncatedTokens: 0,
      windows: 3,
      ...IDS,
    });
    assert.equal(planned.write?.kind, "points");
    const [point, ...more] = planned.write.records;
    assert.equal(more.length, 0);
    assert.equal(point?.id, pointId("docs", "c-1"));
    assert.equal(point?.windowIndex, null);
    assert.equal(point?.window, undefined);
    assert.deepEqual(point?.payload, { text: "Acetaminophen 500 mg tablets" });
    // mean (1.6/3, 1.8/3) normalised: (1.6, 1.8) / sqrt(1.6² + 1.8²)
    const norm = Math.hypot(1.6, 1.8);
    assert.ok(Math.abs((point?.vector[0] ?? 0) - 1.6 / norm) < 1e-6);
    assert.ok(Math.abs((point?.vector[1] ?? 0) - 1.8 / norm) < 1e-6);
  });

  it("a window that is not in the chunk's text fails the chunk rather than storing nonsense", () => {
    const c = chunk({ overflow: { policy: "split", overlapTokens: 0 } });
    const windows = [
      { text: "Acetaminophen", vector: Float32Array.from([1, 0]), tokens: 3 },
      { text: "ibuprofen", vector: Float32Array.from([0, 1]), tokens: 3 },
    ];
    assert.throws(
      () =>
        embeddedChunk(plan(c), { vector: windows[0]!.vector, tokens: 9, truncatedTokens: 0, windows }, MODEL),
      /window 1 of a split chunk is not a substring of its text/,
    );
  });
});
