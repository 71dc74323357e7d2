/**
 * npm run bench [-- options]              the embedder, the server end to end, admission, memory (run.ts)
 * npm run bench -- --distributed [...]    the BullMQ queue on Redis and distributed throughput (distributed.ts)
 */
const distributed = process.argv.indexOf("--distributed");
if (distributed >= 0) {
  process.argv.splice(distributed, 1);
  await import("./distributed.js");
} else {
  await import("./run.js");
}
