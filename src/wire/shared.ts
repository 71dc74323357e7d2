import Type, { type Static, type TSchema } from "typebox";
import type { JobState as DomainJobState, ReceiptState as DomainReceiptState } from "../domain/types.js";

/** Schemas both requests and responses use. */

export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** Integers beyond 2^53 are not exact in JSON numbers: two ids could silently become one. */
export const SafeInteger = (options: { minimum?: number; description?: string } = {}) =>
  Type.Integer({ minimum: Number.MIN_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER, ...options });

/** What a chunk shows in a job: a chunk state, or "failed" (queued again after a failed attempt). */
export const ReceiptState = Type.Union([
  Type.Literal("queued"),
  Type.Literal("running"),
  Type.Literal("stored"),
  Type.Literal("unchanged"),
  Type.Literal("superseded"),
  Type.Literal("failed"),
  Type.Literal("dead"),
  Type.Literal("discarded"),
  Type.Literal("cancelled"),
]);
export type ReceiptState = Static<typeof ReceiptState>;
export const JobState = Type.Union([Type.Literal("queued"), Type.Literal("running"), Type.Literal("done")]);
export type JobState = Static<typeof JobState>;

/** An ISO 8601 timestamp. */
export const Timestamp = (description?: string) =>
  Type.String({ format: "date-time", ...(description ? { description } : {}) });

// The domain's vocabulary and the wire's must not drift: these fail to compile if they differ.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const receiptStatesAgree: Same<ReceiptState, DomainReceiptState> = true;
const jobStatesAgree: Same<JobState, DomainJobState> = true;
void receiptStatesAgree;
void jobStatesAgree;
