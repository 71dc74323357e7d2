import { StatusHistory as StatusHistoryBody } from "../../wire/responses.js";
import type { App, AppDeps } from "../app-deps.js";
import { answers } from "../route-responses.js";
import { StatusHistory } from "../status-history.js";

const round = (value: number) => Math.round(value * 100) / 100;

/**
 * `GET /v1/status/history`: the queue depth and throughput of the last five minutes, one sample a
 * second, kept by this server from its start (the dashboard's chart begins with it, instead of with
 * an empty chart on page load). Sampling runs while the app is open.
 */
export function registerStatusHistoryRoutes(app: App, deps: AppDeps): void {
  const samples = new StatusHistory(async () => {
    const stats = await deps.queue.stats();
    const rates = deps.throughput.rates();
    return {
      pendingChunks: stats.pending,
      runningChunks: stats.running,
      pendingTokens: stats.pendingTokens,
      chunksPerSecond: rates.chunksPerSecond,
      tokensPerSecond: rates.tokensPerSecond,
    };
  });
  app.addHook("onReady", async () => samples.start());
  app.addHook("onClose", async () => samples.stop());

  app.get(
    "/v1/status/history",
    {
      schema: {
        summary: "Queue depth and throughput over the last minutes, sampled by the server",
        tags: ["status"],
        response: answers(StatusHistoryBody),
      },
    },
    async () => ({
      interval_ms: samples.intervalMs,
      samples: samples.samples().map((s) => ({
        t: s.t,
        pending_chunks: s.pendingChunks,
        running_chunks: s.runningChunks,
        pending_tokens_estimate: s.pendingTokens,
        chunks_per_second: round(s.chunksPerSecond),
        tokens_per_second: round(s.tokensPerSecond),
      })),
    }),
  );
}
