/**
 * A debugging hook: with RAG_EMBED_TRACE_INPUTS=<file> in its environment, the embedding worker appends
 * every embed request's model input to <file>, one JSON line per request: {"kind", "rows"}, each row the
 * token ids of one text or window exactly as the model receives them (prefix and special tokens
 * included, before padding). Tests use it to check what the model saw; an operator can use it to see
 * how a text was prefixed, cut and truncated. Unset, it costs one comparison per request.
 */
import { appendFileSync } from "node:fs";
import type { EmbedKind } from "../domain/types.js";

const TRACE_FILE = process.env.RAG_EMBED_TRACE_INPUTS;

export function traceInputs(kind: EmbedKind, rows: readonly (readonly number[])[]): void {
  if (!TRACE_FILE) return;
  appendFileSync(TRACE_FILE, `${JSON.stringify({ kind, rows })}\n`);
}
