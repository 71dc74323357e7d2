import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BatchScheduler, type Lane, type ScheduledJob } from "../../src/embedder/batch-scheduler.js";

/**
 * Fake sessions: a batch holds one until the test finishes it, so the test decides when each session
 * frees up and reads the order in which batches were handed out.
 */
class FakeSessions {
  readonly started: string[] = [];
  private readonly running: Array<{ name: string; finish(error?: Error): void }> = [];
  constructor(private free: number) {}

  idle = (): number => this.free;

  run(name: string): Promise<void> {
    if (this.free === 0) throw new Error("no idle session");
    this.free--;
    this.started.push(name);
    return new Promise((resolve, reject) => {
      this.running.push({
        name,
        finish: (error) => {
          this.free++;
          if (error) reject(error);
          else resolve();
        },
      });
    });
  }

  /** Finishes the oldest running batch, then lets the scheduler hand out the next. */
  async finishOldest(error?: Error): Promise<void> {
    const batch = this.running.shift();
    assert.ok(batch, "a batch is running");
    batch.finish(error);
    await new Promise((resolve) => setImmediate(resolve));
  }

  async drain(): Promise<void> {
    while (this.running.length > 0) await this.finishOldest();
  }
}

interface Outcome {
  done: string[];
  failed: Array<[string, string]>;
}

function job(sessions: FakeSessions, name: string, batches: number): ScheduledJob {
  return { batchCount: batches, runBatch: (index) => sessions.run(`${name}${index}`) };
}

function request(
  outcome: Outcome,
  lane: Lane,
  name: string,
  plan: () => ScheduledJob,
): Parameters<BatchScheduler<ScheduledJob>["add"]>[0] {
  return {
    lane,
    plan,
    done: () => outcome.done.push(name),
    fail: (error) => outcome.failed.push([name, error instanceof Error ? error.message : String(error)]),
  };
}

function setup(free: number) {
  const sessions = new FakeSessions(free);
  const scheduler = new BatchScheduler<ScheduledJob>(sessions.idle);
  const outcome: Outcome = { done: [], failed: [] };
  const add = (lane: Lane, name: string, batches: number) =>
    scheduler.add(request(outcome, lane, name, () => job(sessions, name, batches)));
  return { sessions, scheduler, outcome, add };
}

describe("BatchScheduler", () => {
  it("runs a search's batch before the queued batches of an earlier passage request", async () => {
    const { sessions, outcome, add } = setup(1);
    add("passage", "P", 3);
    add("query", "Q", 1);
    await sessions.drain();
    assert.deepEqual(sessions.started, ["P0", "Q0", "P1", "P2"]);
    assert.deepEqual(outcome.done, ["Q", "P"]);
  });

  it("hands one request's batches to every idle session at once", () => {
    const { sessions, add } = setup(3);
    add("passage", "P", 5);
    assert.deepEqual(sessions.started, ["P0", "P1", "P2"]);
  });

  it("keeps passage requests in arrival order", async () => {
    const { sessions, add } = setup(1);
    add("passage", "A", 2);
    add("passage", "B", 2);
    await sessions.drain();
    assert.deepEqual(sessions.started, ["A0", "A1", "B0", "B1"]);
  });

  it("a large query request does not starve the ingest: after its first batch it takes turns", async () => {
    // /v1/embeddings with 2,048 inputs is query work of 64 batches; the ingest must keep moving.
    const { sessions, outcome, add } = setup(1);
    add("passage", "P", 4);
    add("query", "Q", 6);
    await sessions.drain();
    assert.deepEqual(sessions.started, ["P0", "Q0", "P1", "Q1", "P2", "Q2", "P3", "Q3", "Q4", "Q5"]);
    assert.deepEqual(outcome.done, ["P", "Q"]);
  });

  it("a new search still jumps ahead of a large query request that has started", async () => {
    const { sessions, add } = setup(1);
    add("query", "Big", 4);
    await sessions.finishOldest();
    add("query", "Search", 1);
    await sessions.drain();
    assert.deepEqual(sessions.started, ["Big0", "Big1", "Search0", "Big2", "Big3"]);
  });

  it("waits while no session is idle (no model loaded yet), then starts on pump", () => {
    let free = 0;
    const started: string[] = [];
    const scheduler = new BatchScheduler<ScheduledJob>(() => free);
    let planned = 0;
    scheduler.add({
      lane: "passage",
      plan: () => {
        planned++;
        return {
          batchCount: 1,
          runBatch: () => {
            free--;
            started.push("P0");
            return new Promise(() => {});
          },
        };
      },
      done: () => {},
      fail: () => {},
    });
    assert.equal(planned, 0, "nothing is tokenized before a session is free");
    free = 1;
    scheduler.pump();
    assert.deepEqual(started, ["P0"]);
  });

  it("answers a request that fails to plan with its error, and goes on with the next", async () => {
    const { sessions, scheduler, outcome } = setup(1);
    scheduler.add(
      request(outcome, "passage", "Bad", () => {
        throw new Error("overflow has 1 entries for 2 texts");
      }),
    );
    scheduler.add(request(outcome, "passage", "Good", () => job(sessions, "Good", 1)));
    await sessions.drain();
    assert.deepEqual(outcome.failed, [["Bad", "overflow has 1 entries for 2 texts"]]);
    assert.deepEqual(outcome.done, ["Good"]);
  });

  it("answers a request with no batches at once", () => {
    const { sessions, outcome, add } = setup(1);
    add("passage", "Empty", 0);
    assert.deepEqual(outcome.done, ["Empty"]);
    assert.deepEqual(sessions.started, []);
  });

  it("fails a request once on its first failed batch and drops the rest", async () => {
    const { sessions, scheduler, outcome, add } = setup(2);
    add("passage", "P", 4);
    await sessions.finishOldest(new Error("ORT crashed"));
    await sessions.drain();
    assert.deepEqual(outcome.failed, [["P", "ORT crashed"]]);
    assert.deepEqual(outcome.done, []);
    assert.deepEqual(sessions.started, ["P0", "P1"]);
    assert.equal(scheduler.size, 0);
  });
});
