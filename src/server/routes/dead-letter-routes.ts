import type { DeadLetterSelector } from "../../queue/job-queue.js";
import { DeadLetterQuery, DeadLetterSelectorBody } from "../../wire/requests.js";
import { DeadLetterPage, DeadLettersDiscarded, DeadLettersReplayed } from "../../wire/responses.js";
import type { App, AppDeps } from "../app-deps.js";
import { answers } from "../route-responses.js";

/** The schema admits exactly one of all / job_id / ids. */
function selector(body: DeadLetterSelectorBody): DeadLetterSelector {
  if ("all" in body) return { all: true };
  if ("job_id" in body) return { jobId: body.job_id };
  return { seqs: body.ids };
}

export function registerDeadLetterRoutes(app: App, deps: AppDeps): void {
  app.get(
    "/v1/dead-letters",
    {
      schema: {
        summary: "Chunks whose retries ran out, with the reason",
        tags: ["dead letters"],
        querystring: DeadLetterQuery,
        response: answers(DeadLetterPage),
      },
    },
    async (request) => {
      const { job_id: jobId, after, limit = 100 } = request.query;
      const page = await deps.queue.listDeadLetters({ jobId, after, limit });
      return {
        dead_letters: page.items.map((d) => ({
          id: d.seq,
          job_id: d.jobId,
          collection: d.collection,
          chunk_id: d.chunkId,
          reason: d.reason,
          attempts: d.attempts,
          dead_at: d.deadAt,
        })),
        next_cursor: page.nextCursor,
      };
    },
  );

  app.post(
    "/v1/dead-letters/replay",
    {
      schema: {
        summary: "Put dead letters back in the queue (attempts reset)",
        tags: ["dead letters"],
        body: DeadLetterSelectorBody,
        response: answers(DeadLettersReplayed),
      },
    },
    async (request) => {
      const replayed = await deps.queue.replayDeadLetters(selector(request.body));
      request.log.info({ selector: request.body, replayed }, "dead letters replayed");
      deps.onEnqueued();
      return { replayed };
    },
  );

  app.delete(
    "/v1/dead-letters",
    {
      schema: {
        summary: "Discard dead letters",
        tags: ["dead letters"],
        body: DeadLetterSelectorBody,
        response: answers(DeadLettersDiscarded),
      },
    },
    async (request) => {
      const discarded = await deps.queue.discardDeadLetters(selector(request.body));
      request.log.info({ selector: request.body, discarded }, "dead letters discarded");
      return { discarded };
    },
  );
}
