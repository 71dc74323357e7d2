import { AppError } from "../../domain/errors.js";
import type { SearchFilter } from "../../domain/types.js";

/** Dot-separated identifiers only: the key becomes a JSON path, so nothing else may reach SQLite. */
const FILTER_KEY = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

export interface FilterSql {
  /** SQL fragment to AND into the WHERE clause; `1` when there is no filter. */
  sql: string;
  params: Array<string | number>;
}

export function filterKeyToJsonPath(key: string): string {
  if (!FILTER_KEY.test(key)) {
    throw new AppError(
      "invalid_request",
      `Invalid filter key ${JSON.stringify(key)}: use payload field names joined by dots (e.g. "meta.lang")`,
      { details: { key } },
    );
  }
  return `$.${key}`;
}

/**
 * Translates a payload filter into SQL over `payloadColumn` (a trusted column reference, never user
 * input). Keys are validated and bound as JSON paths; values are always bound.
 *
 * Matching is type-exact and follows Qdrant: the string "1" does not match the number 1, `true` does
 * not match 1 (json_extract would return 1 for both), and a field holding an array matches when any
 * element matches. json_each gives that for free: on a scalar it yields the scalar itself (key NULL),
 * on an array its elements (integer keys); object members (text keys) are excluded, because Qdrant
 * never matches a scalar against an object, while json_extract would have returned the object as
 * text and matched a string equal to its JSON.
 */
export function payloadFilterSql(payloadColumn: string, filter: SearchFilter | undefined): FilterSql {
  const clauses: string[] = [];
  const params: Array<string | number> = [];
  for (const [key, raw] of Object.entries(filter ?? {})) {
    const path = filterKeyToJsonPath(key);
    const values = Array.isArray(raw) ? raw : [raw];
    const strings: string[] = [];
    const numbers: number[] = [];
    const booleans: string[] = [];
    for (const value of values) {
      if (typeof value === "string") strings.push(value);
      else if (typeof value === "number" && Number.isFinite(value)) numbers.push(value);
      else if (typeof value === "boolean") booleans.push(value ? "true" : "false");
      else {
        throw new AppError(
          "invalid_request",
          `Filter value for ${JSON.stringify(key)} must be a string, finite number or boolean`,
          {
            details: { key },
          },
        );
      }
    }
    const alternatives: string[] = [];
    if (strings.length > 0) {
      alternatives.push(`(je.type = 'text' AND je.atom IN (${placeholders(strings.length)}))`);
    }
    if (numbers.length > 0) {
      alternatives.push(`(je.type IN ('integer', 'real') AND je.atom IN (${placeholders(numbers.length)}))`);
    }
    if (booleans.length > 0) {
      alternatives.push(`je.type IN (${placeholders(booleans.length)})`);
    }
    if (alternatives.length === 0) {
      // An empty any-of list matches nothing; keep going so every other key is still validated.
      clauses.push("0");
      continue;
    }
    clauses.push(
      `EXISTS (SELECT 1 FROM json_each(${payloadColumn}, ?) AS je` +
        ` WHERE (je.key IS NULL OR typeof(je.key) = 'integer') AND (${alternatives.join(" OR ")}))`,
    );
    params.push(path, ...strings, ...numbers, ...booleans);
  }
  return { sql: clauses.length === 0 ? "1" : clauses.join(" AND "), params };
}

/** `?, ?, ?` for an IN list of n bound values. */
export function placeholders(n: number): string {
  return new Array<string>(n).fill("?").join(", ");
}
