import type { Job } from "../../src/client/types.js";
import { getJson, waitFor } from "./server-process.js";

export interface SeedChunkFixture {
  chunk_id: string;
  item_sequence: string;
  name: string;
  contents: string;
  meta: Record<string, unknown> | null;
}

/** Seed-format chunks of varied length, like drug-leaflet sections. */
export function seedChunks(count: number, prefix = "c"): SeedChunkFixture[] {
  return Array.from({ length: count }, (_, i) => ({
    chunk_id: `${prefix}-${i}`,
    item_sequence: `2008${String(Math.floor(i / 5)).padStart(5, "0")}`,
    name: `Drug ${Math.floor(i / 5)}`,
    contents: `Section ${i}: ${"take with water after meals; ".repeat(1 + (i % 12))}`,
    meta: i % 3 === 0 ? null : { section: i % 5, lang: i % 2 ? "ko" : "en" },
  }));
}

/** GET /v1/jobs/{id}, as the API's schema (src/wire/responses.ts) types it. */
export type JobBody = Job;

export async function waitForJobDone(baseUrl: string, jobId: string, timeoutMs = 120_000): Promise<JobBody> {
  return waitFor(
    async () => {
      const { status, body } = await getJson<JobBody>(`${baseUrl}/v1/jobs/${jobId}`);
      return status === 200 && body.state === "done" ? body : undefined;
    },
    { timeoutMs, what: `job ${jobId} to finish` },
  );
}
