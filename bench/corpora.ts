/**
 * The texts the throughput figures are measured on: SciFact as it is (about 70 % of it over the
 * 256-token cap: nearly uniform lengths), the same documents cut to mixed lengths, and Korean legal
 * text for e5.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Doc } from "./lib.js";

/** A fixed-seed generator (LCG), so every run and every engine sees the same texts. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 2 ** 32;
  };
}

/**
 * Each document cut to its first n words, n log-uniform in 3…200 (about 5 to 300 tokens), in a
 * shuffled order: what a mix of titles, sentences and paragraphs looks like, where sorting by length
 * decides the padding.
 */
export function mixedLengths(docs: Doc[]): Doc[] {
  const next = random(12345);
  const cut = docs.map((doc) => {
    const words = doc.text.split(/\s+/);
    const n = Math.round(Math.exp(Math.log(3) + next() * (Math.log(200) - Math.log(3))));
    return { id: `${doc.id}-m`, text: words.slice(0, n).join(" ") };
  });
  for (let i = cut.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [cut[i], cut[j]] = [cut[j] as Doc, cut[i] as Doc];
  }
  return cut;
}

/**
 * Korean chunks of 20–200 words (eojeol) from the Korean constitution and ten National Assembly bills
 * that KoNLPy ships (`konlpy/data/corpus/kolaw`, `kobill`), whitespace collapsed; `count` chunks,
 * cycling with a new id when the texts run out.
 */
export function koreanChunks(corpusDir: string, count: number): Doc[] {
  const next = random(7);
  const files = ["kolaw", "kobill"].flatMap((dir) =>
    readdirSync(join(corpusDir, dir))
      .sort()
      .map((file) => join(corpusDir, dir, file)),
  );
  const chunks: string[] = [];
  for (const file of files) {
    const words = readFileSync(file, "utf8").replace(/\s+/g, " ").trim().split(" ");
    for (let i = 0; i < words.length; ) {
      const n = 20 + Math.floor(next() * 180);
      chunks.push(words.slice(i, i + n).join(" "));
      i += n;
    }
  }
  return Array.from({ length: count }, (_, i) => ({ id: `ko-${i}`, text: chunks[i % chunks.length] ?? "" }));
}
