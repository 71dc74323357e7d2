import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ProcessingError } from "../../src/domain/errors.js";
import type { EmbedKind, EmbedOverflow } from "../../src/domain/types.js";
import type { Embedder, EmbedResult } from "../../src/embedder/embedder.js";
import {
  type IsolatedResult,
  IsolatingEmbedder,
  type PassageText,
} from "../../src/pipeline/isolating-embedder.js";

/**
 * A fake embedder: a text's vector is [its length]; a text containing "poison" fails any call it
 * is part of; `fail` makes every call throw it. Records each call's texts, kind and overflow.
 */
function fakeEmbedder(fail?: () => Error) {
  const calls: Array<{ texts: string[]; kind: EmbedKind; overflow: EmbedOverflow[] | undefined }> = [];
  const embedder: Pick<Embedder, "embed"> = {
    async embed(texts, kind, overflow): Promise<EmbedResult> {
      calls.push({ texts, kind, overflow });
      if (fail) throw fail();
      const poisoned = texts.find((t) => t.includes("poison"));
      if (poisoned !== undefined) throw new Error(`cannot embed "${poisoned}"`);
      return {
        vectors: texts.map((t) => Float32Array.from([t.length])),
        tokens: texts.map((t) => t.length * 2),
        truncatedTokens: texts.map((t) => (t.startsWith("long") ? 7 : 0)),
        windows: texts.map(() => null),
      };
    },
  };
  return { embedder, calls };
}

const passage = (text: string, policy: PassageText["overflow"]["policy"] = "truncate"): PassageText => ({
  text,
  overflow: { policy, overlapTokens: policy === "truncate" ? 0 : 16 },
});

function vectorOf(result: IsolatedResult | undefined): number | undefined {
  assert.ok(result && !("error" in result), `expected a result, got ${JSON.stringify(result)}`);
  return result.vector[0];
}

describe("IsolatingEmbedder", () => {
  it("embeds a healthy batch in one passage call, results in input order", async () => {
    const { embedder, calls } = fakeEmbedder();
    const results = await new IsolatingEmbedder(embedder).embedPassages([
      passage("a"),
      passage("long text"),
      passage("ccc"),
    ]);
    assert.equal(calls.length, 1);
    assert.equal(calls[0]?.kind, "passage");
    assert.deepEqual(results.map(vectorOf), [1, 9, 3]);
    assert.deepEqual(
      results.map((r) => ("error" in r ? null : [r.tokens, r.truncatedTokens, r.windows])),
      [
        [2, 0, null],
        [18, 7, null],
        [6, 0, null],
      ],
    );
  });

  it("asks the embedder to split a pooled chunk (its windows are averaged later) and keeps truncate", async () => {
    const { embedder, calls } = fakeEmbedder();
    await new IsolatingEmbedder(embedder).embedPassages([
      passage("a", "truncate"),
      passage("b", "split"),
      passage("c", "pool"),
    ]);
    assert.deepEqual(calls[0]?.overflow, [
      { policy: "truncate", overlapTokens: 0 },
      { policy: "split", overlapTokens: 16 },
      { policy: "split", overlapTokens: 16 },
    ]);
  });

  it("a poisonous text fails only itself: the batch is retried text by text", async () => {
    const { embedder, calls } = fakeEmbedder();
    const results = await new IsolatingEmbedder(embedder).embedPassages([
      passage("first"),
      passage("poison pill"),
      passage("third"),
    ]);
    assert.deepEqual(
      calls.map((c) => c.texts),
      [["first", "poison pill", "third"], ["first"], ["poison pill"], ["third"]],
    );
    assert.equal(vectorOf(results[0]), 5);
    assert.ok(results[1] && "error" in results[1]);
    assert.match(String((results[1] as { error: Error }).error.message), /poison pill/);
    assert.equal(vectorOf(results[2]), 5);
  });

  it("an outage is thrown at once, without embedding text by text", async () => {
    const outage = new ProcessingError("engine unreachable", { retryable: true, outage: true });
    const { embedder, calls } = fakeEmbedder(() => outage);
    await assert.rejects(
      new IsolatingEmbedder(embedder).embedPassages([passage("a"), passage("b"), passage("c")]),
      (error) => error === outage,
    );
    assert.equal(calls.length, 1);
  });

  it("a non-outage failure of every text alone rethrows the batch's original error", async () => {
    let call = 0;
    const { embedder, calls } = fakeEmbedder(() => new Error(`failure ${++call}`));
    await assert.rejects(
      new IsolatingEmbedder(embedder).embedPassages([passage("a"), passage("b")]),
      /^Error: failure 1$/,
    );
    assert.equal(calls.length, 3, "the batch, then each text alone");
  });

  it("a single text's failure is thrown as is (no retry alone)", async () => {
    const { embedder, calls } = fakeEmbedder();
    await assert.rejects(new IsolatingEmbedder(embedder).embedPassages([passage("poison")]), /cannot embed/);
    assert.equal(calls.length, 1);
  });

  it("an embedder answering fewer vectors than texts fails the batch, then each text alone succeeds", async () => {
    let first = true;
    const embedder: Pick<Embedder, "embed"> = {
      async embed(texts) {
        const short = first;
        first = false;
        const n = short ? texts.length - 1 : texts.length;
        return {
          vectors: texts.slice(0, n).map(() => Float32Array.from([1])),
          tokens: texts.map(() => 1),
          truncatedTokens: texts.map(() => 0),
          windows: texts.map(() => null),
        };
      },
    };
    const results = await new IsolatingEmbedder(embedder).embedPassages([passage("a"), passage("b")]);
    assert.deepEqual(results.map(vectorOf), [1, 1]);
  });
});
