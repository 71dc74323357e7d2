/**
 * The embedding process's work queue: which request's next batch the next idle ONNX session runs.
 * Knows nothing of tokenizers or sessions (the caller passes how many sessions are idle and jobs that run
 * their own batches), so its order is tested with fakes.
 */

/** Query work (a search or /v1/embeddings waiting on the answer) or passage work (the ingest). */
export type Lane = "query" | "passage";

/** A planned request, as the scheduler sees it. */
export interface ScheduledJob {
  readonly batchCount: number;
  /** Runs batch `index`; must claim its session before it returns (idle sessions drop by one). */
  runBatch(index: number): Promise<void>;
}

export interface ScheduledRequest<J extends ScheduledJob> {
  lane: Lane;
  /** Plans the job when a session is first free for it, so tokenizing waits its turn too; may throw. */
  plan(): J;
  /** Every batch ran. */
  done(job: J): void;
  /** Planning or a batch failed: called once; the job's other batches are dropped. */
  fail(error: unknown): void;
}

interface Entry<J extends ScheduledJob> {
  request: ScheduledRequest<J>;
  job?: J;
  nextBatch: number;
  inFlight: number;
}

/**
 * Every idle session gets the next batch (see `next` for the order); within a lane requests run in
 * arrival order, so one request's batches run on all sessions at once. Each request gets one answer:
 * done or fail.
 */
export class BatchScheduler<J extends ScheduledJob> {
  private readonly entries: Entry<J>[] = [];
  /** The lane the last turn went to, when both had batches left. */
  private lastTurn: Lane = "query";

  /** `idleSessions` is 0 while no model is loaded: requests wait. */
  constructor(private readonly idleSessions: () => number) {}

  add(request: ScheduledRequest<J>): void {
    this.entries.push({ request, nextBatch: 0, inFlight: 0 });
    this.pump();
  }

  /** Requests not answered yet. */
  get size(): number {
    return this.entries.length;
  }

  /** Hands batches to idle sessions; call again whenever a session may have become free. */
  pump(): void {
    while (this.idleSessions() > 0) {
      const entry = this.next();
      if (!entry) return;
      let job: J;
      try {
        entry.job ??= entry.request.plan();
        job = entry.job;
      } catch (error) {
        this.remove(entry);
        entry.request.fail(error);
        continue;
      }
      if (job.batchCount === 0) {
        this.remove(entry);
        entry.request.done(job);
        continue;
      }
      const index = entry.nextBatch++;
      entry.inFlight++;
      let running: Promise<void>;
      try {
        running = job.runBatch(index);
      } catch (error) {
        running = Promise.reject(error);
      }
      running
        .then(
          () => {
            entry.inFlight--;
            if (!this.entries.includes(entry) || entry.inFlight > 0 || entry.nextBatch < job.batchCount)
              return;
            this.remove(entry);
            entry.request.done(job);
          },
          (error: unknown) => {
            entry.inFlight--;
            // The first failed batch answers for the request; its other batches are dropped.
            if (this.remove(entry)) entry.request.fail(error);
          },
        )
        .finally(() => this.pump());
    }
  }

  /**
   * The request whose batch runs next. A query request's first batch jumps the queue (a search is one
   * batch: it waits for no ingest batch). After that a query request is bulk work like the ingest: up to
   * 2,048 /v1/embeddings inputs are 64 batches, and running them all first would stall every passage
   * batch behind them, so the oldest query request and the oldest passage request take turns.
   */
  private next(): Entry<J> | undefined {
    const fresh = this.entries.find(
      (e) => e.request.lane === "query" && e.nextBatch === 0 && hasBatchesLeft(e),
    );
    if (fresh) {
      this.lastTurn = "query";
      return fresh;
    }
    const query = this.entries.find((e) => e.request.lane === "query" && hasBatchesLeft(e));
    const passage = this.entries.find((e) => e.request.lane === "passage" && hasBatchesLeft(e));
    const lane: Lane = !query
      ? "passage"
      : !passage
        ? "query"
        : this.lastTurn === "query"
          ? "passage"
          : "query";
    this.lastTurn = lane;
    return lane === "query" ? query : passage;
  }

  private remove(entry: Entry<J>): boolean {
    const index = this.entries.indexOf(entry);
    if (index >= 0) this.entries.splice(index, 1);
    return index >= 0;
  }
}

function hasBatchesLeft<J extends ScheduledJob>(entry: Entry<J>): boolean {
  return entry.job === undefined || entry.nextBatch < entry.job.batchCount;
}
