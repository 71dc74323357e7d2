import type { Schemas } from "@qdrant/js-client-rest";
import { AppError } from "../../domain/errors.js";
import type { SearchFilter } from "../../domain/types.js";
import { RAG_KEY } from "./qdrant-payload.js";

export type QdrantFilter = Schemas["Filter"];
export type QdrantCondition = Schemas["Condition"];

/** Dot-separated identifiers only, the same keys the embedded store accepts. */
const FILTER_KEY = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

export interface MappedFilter {
  /** Undefined when there is nothing to filter on. */
  filter: QdrantFilter | undefined;
  /** An empty any-of list somewhere: the answer is empty without asking Qdrant. */
  matchesNothing: boolean;
}

/**
 * Our filter syntax (AND of equalities on payload paths; an array is any-of) as a Qdrant filter.
 * Qdrant's `match` already matches a payload array when any element matches, and keeps types apart
 * (1 ≠ "1" ≠ true). `match` takes strings, integers and booleans only, so a non-integer number
 * becomes `range: {gte: x, lte: x}`; a key with values of several kinds becomes a nested `should`.
 */
export function toQdrantFilter(filter: SearchFilter | undefined): MappedFilter {
  const must: QdrantCondition[] = [];
  let matchesNothing = false;
  for (const [key, raw] of Object.entries(filter ?? {})) {
    checkKey(key);
    const values = Array.isArray(raw) ? raw : [raw];
    const strings = new Set<string>();
    const integers = new Set<number>();
    const floats = new Set<number>();
    const booleans = new Set<boolean>();
    for (const value of values) {
      if (typeof value === "string") strings.add(value);
      else if (typeof value === "number" && Number.isFinite(value)) {
        if (Number.isSafeInteger(value)) integers.add(value);
        else floats.add(value);
      } else if (typeof value === "boolean") booleans.add(value);
      else {
        throw new AppError(
          "invalid_request",
          `Filter value for ${JSON.stringify(key)} must be a string, finite number or boolean`,
          { details: { key } },
        );
      }
    }
    const alternatives: QdrantCondition[] = [];
    if (strings.size === 1) alternatives.push({ key, match: { value: [...strings][0]! } });
    else if (strings.size > 1) alternatives.push({ key, match: { any: [...strings] } });
    if (integers.size === 1) alternatives.push({ key, match: { value: [...integers][0]! } });
    else if (integers.size > 1) alternatives.push({ key, match: { any: [...integers] } });
    for (const b of booleans) alternatives.push({ key, match: { value: b } });
    for (const f of floats) alternatives.push({ key, range: { gte: f, lte: f } });
    if (alternatives.length === 0) matchesNothing = true;
    else if (alternatives.length === 1) must.push(alternatives[0]!);
    else must.push({ should: alternatives });
  }
  return { filter: must.length === 0 ? undefined : { must }, matchesNothing };
}

function checkKey(key: string): void {
  if (!FILTER_KEY.test(key)) {
    throw new AppError(
      "invalid_request",
      `Invalid filter key ${JSON.stringify(key)}: use payload field names joined by dots (e.g. "meta.lang")`,
      { details: { key } },
    );
  }
  if (key === RAG_KEY || key.startsWith(`${RAG_KEY}.`)) {
    throw new AppError(
      "invalid_request",
      `Filter key ${JSON.stringify(key)} is reserved for the server's own fields`,
      { details: { key } },
    );
  }
}
