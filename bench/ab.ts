/**
 * npm run bench -- --ab [--docs N] [--runs N] [--set scifact|mixed] --variant NAME:KEY=VALUE,KEY=VALUE ...
 * (the key AB_BUILD=PATH/cli/main.js runs that variant on another build)
 *
 * A/B of server settings end to end: per round, each variant in turn (interleaved, so other tenants'
 * load meets them alike) gets a fresh server, the slice POSTed as 100-chunk requests (4 in flight),
 * until nothing is pending. Reports tokens per CPU-second of the server's process tree, the peak RSS
 * (VmHWM) of the server process and of the embedder child, and the sampled peak of their sum.
 */
import os from "node:os";
import { parseArgs } from "node:util";
import { mixedLengths } from "./corpora.js";
import {
  buildServer,
  jobTokens,
  loadCorpus,
  median,
  pool,
  postChunks,
  processTree,
  round,
  slices,
  startServer,
  status,
  treeCpuSeconds,
} from "./lib.js";

const { values: args } = parseArgs({
  options: {
    docs: { type: "string", default: "300" },
    runs: { type: "string", default: "3" },
    set: { type: "string", default: "scifact" },
    variant: { type: "string", multiple: true, default: [] },
    build: { type: "string" },
  },
});
const variants = args.variant.map((spec) => {
  const [name = spec, list = ""] = spec.split(":");
  const env = Object.fromEntries(
    list
      .split(",")
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
  );
  return { name, env };
});
if (variants.length === 0) throw new Error("--variant NAME:KEY=VALUE,... at least once");
const slice = loadCorpus().slice(0, Number(args.docs));
const docs = args.set === "mixed" ? mixedLengths(slice) : slice;
const log = (msg: string) => process.stderr.write(`[ab] ${msg}\n`);
const loadavg = () => (os.loadavg()[0] ?? 0).toFixed(1);

interface Result {
  variant: string;
  round: number;
  load: string;
  tokensPerCpuS: number;
  tokensPerS: number;
  cpuS: number;
  serverHwmMb: number;
  embedderHwmMb: number;
  sampledTreeMb: number;
}

async function one(main: string, variant: (typeof variants)[number], r: number): Promise<Result> {
  // AB_BUILD=PATH/cli/main.js runs this variant on another build (e.g. a copy of the previous one).
  const { AB_BUILD, ...env } = variant.env;
  const server = await startServer(AB_BUILD ?? main, env);
  const pid = server.child.pid ?? 0;
  const load = loadavg();
  try {
    const cpu0 = treeCpuSeconds(pid);
    const started = performance.now();
    const posted = await pool(slices(docs, 100), 4, (chunks) => postChunks(server.client, "bench", chunks));
    for (;;) {
      const s = await status(server.client);
      if (s.queue.pending_chunks === 0 && s.queue.running_chunks === 0) break;
      await new Promise((done) => setTimeout(done, 25));
    }
    const seconds = (performance.now() - started) / 1000;
    const cpu = treeCpuSeconds(pid) - cpu0;
    let tokens = 0;
    for (const p of posted) tokens += (await jobTokens(server.client, p.jobId ?? "")).tokens;
    const tree = processTree(pid);
    await server.stop();
    const hwm = (p: number | undefined) => round(server.memory.hwmMb.get(p ?? 0) ?? 0, 0);
    return {
      variant: variant.name,
      round: r,
      load,
      tokensPerCpuS: round(tokens / cpu, 0),
      tokensPerS: round(tokens / seconds, 0),
      cpuS: round(cpu, 2),
      serverHwmMb: hwm(tree[0]),
      embedderHwmMb: round(Math.max(0, ...tree.slice(1).map((p) => server.memory.hwmMb.get(p) ?? 0)), 0),
      sampledTreeMb: round(server.memory.peakTreeRssMb, 0),
    };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

const main = args.build ?? buildServer();
const results: Result[] = [];
for (let r = 1; r <= Number(args.runs); r++) {
  for (const variant of variants) {
    const result = await one(main, variant, r);
    log(JSON.stringify(result));
    results.push(result);
  }
}
const summary = variants.map(({ name }) => {
  const mine = results.filter((x) => x.variant === name);
  const pick = (k: keyof Result) => median(mine.map((x) => Number(x[k])));
  return {
    variant: name,
    tokensPerCpuS: pick("tokensPerCpuS"),
    serverHwmMb: Math.max(...mine.map((x) => x.serverHwmMb)),
    embedderHwmMb: Math.max(...mine.map((x) => x.embedderHwmMb)),
    sampledTreeMb: Math.max(...mine.map((x) => x.sampledTreeMb)),
  };
});
// Per round, each variant's tokens per CPU-second over the first variant's.
const ratios = variants.slice(1).map(({ name }) => ({
  variant: name,
  over_first_per_round: results
    .filter((x) => x.variant === name)
    .map((x) => {
      const a = results.find((y) => y.variant === variants[0]?.name && y.round === x.round);
      return a ? round(x.tokensPerCpuS / a.tokensPerCpuS, 3) : null;
    }),
}));
process.stdout.write(
  `${JSON.stringify({ docs: docs.length, set: args.set, summary, ratios, results }, null, 1)}\n`,
);
