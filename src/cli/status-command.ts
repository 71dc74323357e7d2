import { parseArgs } from "node:util";
import { CLIENT_FLAGS, CLIENT_FLAGS_USAGE, clientFrom, formatDuration } from "./client-options.js";

export const STATUS_USAGE = `Usage: rag-embed status [--json]

Prints the server's queue, throughput, dead letters and model (GET /v1/status).
${CLIENT_FLAGS_USAGE}`;

export async function statusCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: CLIENT_FLAGS, allowPositionals: false, strict: true });
  if (values.help) {
    process.stdout.write(`${STATUS_USAGE}\n`);
    return 0;
  }
  const client = clientFrom(values);
  const status = await client.status();
  if (values.json) {
    process.stdout.write(`${JSON.stringify(status)}\n`);
    return 0;
  }
  const q = status.queue;
  const model = status.model.ready ? `${status.model.id} (${status.model.dimension}-d), ready` : "loading";
  process.stdout.write(
    [
      `Server:      ${client.baseUrl}`,
      `Model:       ${model}`,
      `Queue:       ${q.pending_chunks} queued, ${q.running_chunks} running, ~${q.pending_tokens_estimate} tokens; max ${q.max_queue_size} (${q.available ? "accepting" : "full"})`,
      `Throughput:  ${status.throughput.chunks_per_second} chunks/s, ${status.throughput.tokens_per_second} tokens/s`,
      `Drain time:  ${status.estimated_drain_seconds === null ? "-" : formatDuration(status.estimated_drain_seconds)}`,
      `Dead letters: ${status.dead_letters}`,
    ]
      .map((line) => `${line}\n`)
      .join(""),
  );
  return 0;
}
