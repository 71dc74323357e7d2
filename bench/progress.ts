/**
 * npm run bench -- --only progress [--runs N] [--progress-chunks N] [--progress-before PATH]
 *
 * How progress looks from outside while a large job is ingested: one POST of N chunks (SciFact
 * documents cycled, unique ids) to a fresh server, then `/test/status` polled every 20 ms and
 * `/v1/status` every 250 ms until the queue is empty.
 * - first_stored_ms: from the 202 (the first accepted chunk) to the first poll where
 *   current_task_queue_size is below N (the first chunk stored);
 * - largest_step: the largest drop of current_task_queue_size between two polls (a whole reservation
 *   when results are committed per reservation; one slice when committed slice by slice);
 * - zero_throughput_share: of the /v1/status samples taken after the first stored chunk while work
 *   was running, the share that showed 0 chunks/s (the "Throughput: 0" of the dashboard);
 * - drain_s, chunks_per_s: time to store all N, so a finer commit is seen not to cost throughput.
 * With --progress-before PATH (another build's cli/main.js, e.g. of main), its runs interleave with
 * this build's, round by round, and both are reported.
 * See docs/bench.md.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { type Doc, median, postChunks, round, startServer, status } from "./lib.js";

const log = (msg: string) => process.stderr.write(`[bench:progress] ${msg}\n`);

export interface ProgressRun {
  chunks: number;
  first_stored_ms: number;
  largest_step: number;
  /** Distinct values current_task_queue_size took on its way down (more = smoother). */
  steps: number;
  zero_throughput_share: number;
  drain_s: number;
  chunks_per_s: number;
}

async function progressRun(main: string, env: Record<string, string>, docs: Doc[]): Promise<ProgressRun> {
  const server = await startServer(main, env);
  try {
    const posted = await postChunks(server.client, "progress", docs);
    if (posted.status !== 202) throw new Error(`progress: POST answered ${posted.status}`);
    const accepted = performance.now();
    const total = docs.length;
    let firstStoredMs: number | null = null;
    let last = total;
    let largestStep = 0;
    let steps = 0;
    let samples = 0;
    let zeroSamples = 0;
    let nextStatusAt = 0;
    for (;;) {
      const now = performance.now();
      const size = (await server.client.seedStatus()).current_task_queue_size;
      if (size < last) {
        if (firstStoredMs === null) firstStoredMs = now - accepted;
        largestStep = Math.max(largestStep, last - size);
        steps += 1;
        last = size;
      }
      if (size === 0) break;
      if (firstStoredMs !== null && now >= nextStatusAt) {
        nextStatusAt = now + 250;
        const s = await status(server.client);
        if (s.queue.running_chunks > 0) {
          samples += 1;
          if (s.throughput.chunks_per_second === 0) zeroSamples += 1;
        }
      }
      if (now - accepted > 600_000) throw new Error("progress: the queue did not drain in 10 minutes");
      await sleep(20);
    }
    const drainS = (performance.now() - accepted) / 1000;
    return {
      chunks: total,
      first_stored_ms: Math.round(firstStoredMs ?? 0),
      largest_step: largestStep,
      steps,
      zero_throughput_share: samples === 0 ? 0 : round(zeroSamples / samples, 3),
      drain_s: round(drainS, 2),
      chunks_per_s: round(total / drainS, 1),
    };
  } finally {
    await server.stop();
  }
}

/**
 * `runs` rounds; in each, one fresh server per build (`builds`: name → built cli/main.js), so a
 * comparison of two builds (e.g. before and after a change) meets the same load from other tenants.
 * The figures are medians per build; the runs are kept beside them.
 */
export async function progressBench(options: {
  builds: Record<string, string>;
  env: Record<string, string>;
  corpus: Doc[];
  chunks: number;
  runs: number;
}) {
  const docs = Array.from({ length: options.chunks }, (_, i) => {
    const doc = options.corpus[i % options.corpus.length] as Doc;
    return { id: `p-${i}-${doc.id}`, text: doc.text };
  });
  const runs: Record<string, ProgressRun[]> = Object.fromEntries(
    Object.keys(options.builds).map((name) => [name, []]),
  );
  for (let r = 0; r < options.runs; r++) {
    for (const [name, main] of Object.entries(options.builds)) {
      const run = await progressRun(main, options.env, docs);
      runs[name]?.push(run);
      log(`round ${r + 1} ${name}: ${JSON.stringify(run)}`);
    }
  }
  return Object.fromEntries(
    Object.entries(runs).map(([name, list]) => {
      const pick = (f: (run: ProgressRun) => number) => median(list.map(f));
      return [
        name,
        {
          chunks: options.chunks,
          first_stored_ms: pick((r) => r.first_stored_ms),
          largest_step: pick((r) => r.largest_step),
          steps: pick((r) => r.steps),
          zero_throughput_share: pick((r) => r.zero_throughput_share),
          drain_s: pick((r) => r.drain_s),
          chunks_per_s: pick((r) => r.chunks_per_s),
          runs: list,
        },
      ];
    }),
  );
}
