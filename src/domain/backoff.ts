/**
 * Exponential backoff, the one formula every retry uses: the step is base × 2^attempt, capped; the wait
 * is drawn at random under it so callers that failed together do not come back together.
 *
 * - "full" jitter draws from [0, step]: the most spread, for many independent clients retrying against
 *   one server (the SDK, the CLI).
 * - "equal" jitter draws from [step/2, step]: a failing batch (the queue's retries, a remote engine's)
 *   always waits at least half the step, so a dependency that is down is not hit again at once.
 */
export type Jitter = "full" | "equal";

export function backoffMs(
  attempt: number,
  baseMs: number,
  capMs: number,
  jitter: Jitter,
  random: () => number = Math.random,
): number {
  const step = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt));
  const floor = jitter === "full" ? 0 : step / 2;
  return Math.round(floor + random() * (step - floor));
}
