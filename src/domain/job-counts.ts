import Type, { type Static } from "typebox";

/**
 * Chunks of a job per receipt state; they add up to `total`. Written once, as a schema: the queues
 * fill it, the API serialises and documents it (wire/responses.ts), the SDK types it.
 */
export const JobCounts = Type.Object(
  {
    total: Type.Integer({ minimum: 0 }),
    queued: Type.Integer({
      minimum: 0,
      description: "Waiting for a worker (first attempt, or taken back from a worker that died)",
    }),
    running: Type.Integer({ minimum: 0 }),
    stored: Type.Integer({ minimum: 0 }),
    unchanged: Type.Integer({
      minimum: 0,
      description: "Already stored with the same content: not embedded again",
    }),
    superseded: Type.Integer({
      minimum: 0,
      description: "A newer version of the same chunk id was stored first; this one was not written",
    }),
    failed: Type.Integer({ minimum: 0, description: "The last attempt failed; a retry is scheduled" }),
    dead: Type.Integer({
      minimum: 0,
      description: "Dead letters: retries ran out (or the error was permanent)",
    }),
    discarded: Type.Integer({
      minimum: 0,
      description: "Dead letters an operator discarded (or that expired)",
    }),
    cancelled: Type.Integer({ minimum: 0, description: "Cancelled before they ran" }),
  },
  { description: "Chunks of the job per state; they add up to total" },
);
export type JobCounts = Static<typeof JobCounts>;
