/**
 * Token-id handling between the tokenizer and the model, kept pure for tests.
 *
 * Why not the tokenizer's own `truncation: true`: transformers.js truncates by cutting the id array,
 * which drops the closing special token ([SEP], </s>). Python tokenizers (and so sentence-transformers,
 * the reference for these models) cut the text and keep the special tokens. We tokenize once without
 * truncation, then truncate and pad ourselves, which also saves a second tokenization pass.
 */

/** How many special tokens the tokenizer puts before and after a single sequence. */
export interface SpecialTokenLayout {
  prefixLength: number;
  suffixLength: number;
}

/**
 * Learns the layout by comparing one probe text encoded with and without special tokens
 * (e.g. BERT: [CLS] x [SEP] → 1 + 1). Falls back to no special tokens when the content cannot be
 * found, which degrades to plain cutting rather than failing.
 */
export function specialTokenLayout(
  withSpecial: readonly number[],
  withoutSpecial: readonly number[],
): SpecialTokenLayout {
  const extra = withSpecial.length - withoutSpecial.length;
  for (let start = 0; start <= extra; start++) {
    let matches = true;
    for (let i = 0; i < withoutSpecial.length; i++) {
      if (withSpecial[start + i] !== withoutSpecial[i]) {
        matches = false;
        break;
      }
    }
    if (matches) return { prefixLength: start, suffixLength: extra - start };
  }
  return { prefixLength: 0, suffixLength: 0 };
}

/** Cuts `ids` (special tokens included) to `maxTokens`, keeping the closing special tokens. */
export function truncateIds(ids: readonly number[], maxTokens: number, layout: SpecialTokenLayout): number[] {
  if (ids.length <= maxTokens) return [...ids];
  const suffix = layout.suffixLength > 0 ? ids.slice(ids.length - layout.suffixLength) : [];
  const keep = Math.max(0, maxTokens - suffix.length);
  return [...ids.slice(0, keep), ...suffix];
}

export interface BatchInputs {
  /** [batch, seqLength] row-major, right-padded with the pad id. */
  inputIds: BigInt64Array;
  /** 1 for real tokens, 0 for padding. */
  attentionMask: BigInt64Array;
  seqLength: number;
}

/**
 * Builds right-padded int64 model inputs for the given rows. Right padding matters: CLS pooling reads
 * position 0 of every row.
 */
export function buildBatchInputs(rows: readonly (readonly number[])[], padTokenId: number): BatchInputs {
  const seqLength = rows.reduce((max, row) => Math.max(max, row.length), 0);
  const inputIds = new BigInt64Array(rows.length * seqLength).fill(BigInt(padTokenId));
  const attentionMask = new BigInt64Array(rows.length * seqLength);
  rows.forEach((row, r) => {
    const base = r * seqLength;
    for (let t = 0; t < row.length; t++) {
      inputIds[base + t] = BigInt(row[t] ?? padTokenId);
      attentionMask[base + t] = 1n;
    }
  });
  return { inputIds, attentionMask, seqLength };
}
