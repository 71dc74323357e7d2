import { RagEmbedClient, type RagEmbedClientOptions } from "../client/index.js";

/** Flags shared by the commands that talk to a server. */
export const CLIENT_FLAGS = {
  url: { type: "string" },
  "api-key": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export const CLIENT_FLAGS_USAGE = `  --url URL          server URL (env RAG_EMBED_URL, default http://127.0.0.1:8000)
  --api-key KEY      sent as Authorization: Bearer (env RAG_EMBED_API_KEY)`;

export function clientFrom(
  values: {
    url?: string | undefined;
    "api-key"?: string | undefined;
  },
  options: Omit<RagEmbedClientOptions, "baseUrl" | "apiKey"> = {},
): RagEmbedClient {
  const baseUrl = values.url || process.env.RAG_EMBED_URL || "http://127.0.0.1:8000";
  const apiKey = values["api-key"] || process.env.RAG_EMBED_API_KEY;
  return new RagEmbedClient({ ...options, baseUrl, ...(apiKey ? { apiKey } : {}) });
}

/** A usage error: main prints it and exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

export function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`--${name} must be a positive integer, got '${value}'`);
  return n;
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "?";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}
