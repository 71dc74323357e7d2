/** A chunk row's state in the SQLite queue ('retrying' waits for its retry time). */
export type RowState =
  | "queued"
  | "retrying"
  | "running"
  | "stored"
  | "unchanged"
  | "superseded"
  | "dead"
  | "discarded"
  | "cancelled";
