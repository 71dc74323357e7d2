/** Token estimates size reservations and the pending-token gauge, so both queues keep them whole and non-negative. */
export function normaliseTokens(estimate: number): number {
  return Number.isFinite(estimate) && estimate > 0 ? Math.ceil(estimate) : 0;
}
