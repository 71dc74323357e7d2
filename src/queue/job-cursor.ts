/**
 * The cursor of a job listing: which phase (jobs with work left, then finished ones) and the
 * position (creation time, id) of the last job shown. Opaque to clients; both queues use it.
 */
export interface JobCursor {
  phase: "active" | "finished";
  createdAt: number;
  id: string;
}

export const FIRST_PAGE: JobCursor = { phase: "active", createdAt: Number.MAX_SAFE_INTEGER, id: "" };

export function encodeJobCursor(cursor: JobCursor): string {
  return Buffer.from(`${cursor.phase}:${cursor.createdAt}:${cursor.id}`).toString("base64url");
}

/** A cursor this server did not write reads as the first page. */
export function decodeJobCursor(text: string | undefined): JobCursor {
  if (!text) return FIRST_PAGE;
  const match = /^(active|finished):(\d+):(.+)$/.exec(Buffer.from(text, "base64url").toString());
  if (!match) return FIRST_PAGE;
  return { phase: match[1] as JobCursor["phase"], createdAt: Number(match[2]), id: match[3] ?? "" };
}
