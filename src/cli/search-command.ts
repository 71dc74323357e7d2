import { parseArgs } from "node:util";
import type { SearchFilter } from "../client/types.js";
import { CLIENT_FLAGS, CLIENT_FLAGS_USAGE, clientFrom, positiveInt, UsageError } from "./client-options.js";

export const SEARCH_USAGE = `Usage: rag-embed search "QUERY" --collection NAME [options]

  --collection NAME  collection to search (required)
  --top-k N          hits to return (default 10, at most 10000)
  --filter JSON      AND of payload equalities, e.g. '{"document_id":"d-1"}' or '{"meta.lang":["ko","en"]}'
  --json             print the server's answer as JSON
${CLIENT_FLAGS_USAGE}`;

export async function searchCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...CLIENT_FLAGS,
      collection: { type: "string", short: "c" },
      "top-k": { type: "string", short: "k" },
      filter: { type: "string" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${SEARCH_USAGE}\n`);
    return 0;
  }
  const query = positionals.join(" ").trim();
  if (query === "") throw new UsageError(`Give a query.\n\n${SEARCH_USAGE}`);
  if (!values.collection) throw new UsageError("--collection is required");
  const topK = positiveInt("top-k", values["top-k"], 10);
  let filter: SearchFilter | undefined;
  if (values.filter !== undefined) {
    try {
      filter = JSON.parse(values.filter) as SearchFilter;
    } catch (error) {
      throw new UsageError(`--filter is not valid JSON: ${(error as Error).message}`);
    }
    if (typeof filter !== "object" || filter === null || Array.isArray(filter)) {
      throw new UsageError("--filter must be a JSON object");
    }
  }
  const result = await clientFrom(values).search(
    values.collection,
    query,
    filter ? { topK, filter } : { topK },
  );
  if (values.json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  }
  if (result.hits.length === 0) {
    process.stdout.write("No hits.\n");
    return 0;
  }
  const width = Math.max(2, ...result.hits.map((h) => h.id.length));
  process.stdout.write(`${"score".padEnd(8)} ${"id".padEnd(width)} payload\n`);
  for (const hit of result.hits) {
    process.stdout.write(
      `${hit.score.toFixed(4).padEnd(8)} ${hit.id.padEnd(width)} ${shortPayload(hit.payload)}\n`,
    );
  }
  return 0;
}

/** One line of the payload: its text (or contents) cut short, then the other keys. */
export function shortPayload(payload: Record<string, unknown>, max = 100): string {
  const text =
    typeof payload.text === "string"
      ? payload.text
      : typeof payload.contents === "string"
        ? payload.contents
        : undefined;
  const line = (text ?? JSON.stringify(payload)).replace(/\s+/g, " ").trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
