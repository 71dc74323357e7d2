import type { ChunkReceipt, DeadLetter, Job, ReceiptState } from "../../domain/types.js";
import type { SqliteDatabase } from "../../storage/sqlite-database.js";
import { decodeJobCursor, encodeJobCursor, FIRST_PAGE, type JobCursor } from "../job-cursor.js";
import type { DocumentPage, JobListRequest, JobPage, JobSummary, Page, PageRequest } from "../job-queue.js";
import type { QueueStatements, ReceiptRow } from "./queue-statements.js";
import { toDeadLetter, toJob, toJobSummary, toReceipt } from "./sqlite-records.js";

/** Bounds of a page of jobs, receipts or dead letters. */
const MAX_PAGE = 1000;
/** Dead letters listed per job (`failures`); the count in `counts.dead` is always exact. */
const MAX_LISTED_FAILURES = 1000;

/**
 * What the SQLite queue shows of itself, read-only: a job with its failures, job listings, a job's
 * receipts, dead letters, a collection's documents and pending count. Reads only (no write lock), from the
 * statements the queue prepared.
 */
export class SqliteListings {
  constructor(
    private readonly db: SqliteDatabase,
    private readonly sql: QueueStatements,
  ) {}

  async getJob(jobId: string): Promise<Job | null> {
    // Deferred transaction: job row and failure list come from one snapshot.
    return this.db.transaction(() => {
      const row = this.sql.job.get(jobId);
      if (row === undefined) return null;
      const failures = row.dead === 0 ? [] : this.sql.failures.all(jobId, MAX_LISTED_FAILURES);
      const retrying = row.queued === 0 ? 0 : (this.sql.retryingOfJob.get(jobId)?.n ?? 0);
      return toJob(row, failures, retrying);
    })();
  }

  async listJobs(request: JobListRequest): Promise<JobPage> {
    const limit = Math.min(MAX_PAGE, Math.max(1, Math.floor(request.limit)));
    const collection = request.collection ?? null;
    let cursor = decodeJobCursor(request.cursor);
    const items: JobSummary[] = [];
    // Finished jobs are listed only when no state is asked for, or "done".
    const phases: JobCursor["phase"][] =
      request.state === "done" ? ["finished"] : request.state ? ["active"] : ["active", "finished"];
    for (const phase of phases) {
      if (phase === "finished" && cursor.phase === "active") cursor = { ...FIRST_PAGE, phase };
      if (phase !== cursor.phase) continue;
      const statement = phase === "active" ? this.sql.jobsActive : this.sql.jobsFinished;
      // Filtering queued from running happens here, so read a little more than a page.
      for (;;) {
        const rows = statement.all(collection, collection, cursor.createdAt, cursor.id, limit + 1);
        for (const row of rows) {
          cursor = { phase, createdAt: row.created_at, id: row.id };
          const summary = toJobSummary(row);
          if (request.state === undefined || summary.state === request.state) items.push(summary);
          if (items.length > limit) break;
        }
        if (items.length > limit || rows.length <= limit) break;
      }
      if (items.length > limit) break;
    }
    const more = items.length > limit;
    const page = more ? items.slice(0, limit) : items;
    const last = page[page.length - 1];
    return {
      items: page,
      nextCursor:
        more && last
          ? encodeJobCursor({
              phase: last.state === "done" ? "finished" : "active",
              createdAt: Date.parse(last.createdAt),
              id: last.id,
            })
          : null,
    };
  }

  async listChunks(
    jobId: string,
    request: PageRequest & { state?: ReceiptState },
  ): Promise<Page<ChunkReceipt>> {
    const after = pageAfter(request.after);
    const limit = pageLimit(request.limit);
    let rows: ReceiptRow[];
    if (request.state === undefined) rows = this.sql.receipts.all(jobId, after, limit + 1);
    else if (request.state === "queued") rows = this.sql.receiptsQueued.all(jobId, after, limit + 1);
    else if (request.state === "failed") rows = this.sql.receiptsFailed.all(jobId, after, limit + 1);
    else rows = this.sql.receiptsInState.all(jobId, request.state, after, limit + 1);
    return toPage(rows, limit, toReceipt);
  }

  async listDeadLetters(request: PageRequest & { jobId?: string }): Promise<Page<DeadLetter>> {
    const after = pageAfter(request.after);
    const limit = pageLimit(request.limit);
    const rows =
      request.jobId === undefined
        ? this.sql.deadLetters.all(after, limit + 1)
        : this.sql.deadLettersOfJob.all(request.jobId, after, limit + 1);
    return toPage(rows, limit, toDeadLetter);
  }

  /**
   * 0 also when the earliest available chunks are held back behind an older version of the same
   * chunk still in flight, so a caller that gets 0 and then a null reservation should idle briefly.
   */
  async pendingInCollection(collection: string): Promise<number> {
    return this.sql.pendingInCollection.get(collection)?.n ?? 0;
  }

  async listDocuments(collection: string, request: { after?: string; limit: number }): Promise<DocumentPage> {
    const limit = Math.min(MAX_PAGE, Math.max(1, Math.floor(request.limit)));
    const rows = this.sql.listedDocuments.all(collection, request.after ?? "", limit + 1);
    const page = rows.slice(0, limit).map((r) => r.document_id);
    return { documentIds: page, nextCursor: rows.length > limit ? (page[page.length - 1] ?? null) : null };
  }
}

function pageAfter(after: number | undefined): number {
  return after !== undefined && Number.isFinite(after) ? Math.floor(after) : 0;
}

function pageLimit(limit: number): number {
  return Number.isFinite(limit) ? Math.min(MAX_PAGE, Math.max(1, Math.floor(limit))) : MAX_PAGE;
}

/** Rows were read with limit + 1, so one more row than the page means there is a next page. */
function toPage<R extends { seq: number }, T>(rows: R[], limit: number, map: (row: R) => T): Page<T> {
  const more = rows.length > limit;
  const page = more ? rows.slice(0, limit) : rows;
  return { items: page.map(map), nextCursor: more ? (page[page.length - 1]?.seq ?? null) : null };
}
