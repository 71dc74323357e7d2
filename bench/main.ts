/**
 * npm run bench [-- options]              the embedder, the server end to end, admission, memory (run.ts)
 * npm run bench -- --distributed [...]    the BullMQ queue on Redis and distributed throughput (distributed.ts)
 * npm run bench -- --remote [...]         ingest through a remote engine against the local embedder (remote.ts)
 * npm run bench -- --ab --variant A:K=V ... end to end A/B of server settings, interleaved rounds (ab.ts)
 */
const entries: Record<string, string> = {
  "--distributed": "./distributed.js",
  "--remote": "./remote.js",
  "--ab": "./ab.js",
};
const flag = Object.keys(entries).find((name) => process.argv.includes(name));
if (flag) {
  process.argv.splice(process.argv.indexOf(flag), 1);
  await import(entries[flag]!);
} else {
  await import("./run.js");
}
