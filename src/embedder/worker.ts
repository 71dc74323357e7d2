/**
 * The embedding process (forked by WorkerEmbedder): speaks worker-protocol.ts over the IPC channel and
 * hands the work to the modules that do it: model-loader.ts (load and prove the model), embed-job.ts
 * (tokenize, split or truncate, batch, collect vectors), batch-scheduler.ts (which batch runs next on
 * the ONNX sessions, each a worker thread of session-pool.ts). Loads and token counts are answered at
 * once: they need the tokenizer only, which lives on this thread while the sessions compute on theirs.
 */
import { BatchScheduler } from "./batch-scheduler.js";
import { EmbedJob, prefixFor } from "./embed-job.js";
import { type LoadedModel, loadModel } from "./model-loader.js";
import type { WorkerRequest, WorkerResponse } from "./worker-protocol.js";

const send = process.send?.bind(process);
if (!send) throw new Error("worker.ts runs as a forked child process (WorkerEmbedder starts it)");

function reply(message: WorkerResponse): void {
  send?.(message);
}

function replyError(id: number, error: unknown): void {
  reply({ type: "error", id, message: error instanceof Error ? error.message : String(error) });
}

let loaded: LoadedModel | undefined;

const scheduler = new BatchScheduler<EmbedJob>(() => loaded?.sessions.idle() ?? 0);

async function handle(request: Exclude<WorkerRequest, { type: "embed" }>): Promise<void> {
  try {
    if (request.type === "load") {
      const model = await loadModel(request.options);
      await loaded?.sessions.close();
      loaded = model;
      reply({ type: "loaded", id: request.id, info: model.info });
      scheduler.pump();
    } else {
      const model = loaded;
      if (!model) throw new Error("count before load");
      const prefix = prefixFor(model.profile, request.kind);
      reply({
        type: "counted",
        id: request.id,
        counts: request.texts.map((text) => model.tokenizer.encode(prefix + text).length),
      });
    }
  } catch (error) {
    replyError(request.id, error);
  }
}

// The parent validates what it sends; this is the protocol boundary.
process.on("message", (message) => {
  const request = message as WorkerRequest;
  if (request.type !== "embed") {
    void handle(request);
    return;
  }
  scheduler.add({
    lane: request.kind,
    plan: () => {
      if (!loaded) throw new Error("embed before load");
      return EmbedJob.plan(loaded, request);
    },
    done: (job) => reply(job.response()),
    fail: (error) => replyError(request.id, error),
  });
});
// No parent, no work: never linger as an orphan holding a model in memory.
process.on("disconnect", () => process.exit(0));
