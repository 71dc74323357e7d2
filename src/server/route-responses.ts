import type { TSchema } from "typebox";
import { ErrorBody } from "../wire/responses.js";

/**
 * A route's `response` schemas: its answer and the error envelope. Fastify serialises with them
 * (fields not in the schema are not sent) and @fastify/swagger documents them.
 */
export function answers<T extends TSchema>(success: T) {
  return { 200: success, "4xx": ErrorBody, "5xx": ErrorBody };
}

/** For routes that answer 202: the work is accepted (durably), not done. */
export function accepts<T extends TSchema>(success: T) {
  return { 202: success, "4xx": ErrorBody, "5xx": ErrorBody };
}

/** For routes that answer something other than JSON (errors are JSON all the same). */
export function answersAs(mediaTypes: string[], description: string) {
  return {
    200: {
      description,
      content: Object.fromEntries(mediaTypes.map((type) => [type, { schema: { type: "string" } }])),
    },
    "4xx": ErrorBody,
    "5xx": ErrorBody,
  };
}
