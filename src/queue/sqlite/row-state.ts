import type { ChunkState } from "../../domain/types.js";

/** A chunk row's state in the SQLite queue: a chunk's state, or 'retrying' (waits for its retry time). */
export type RowState = ChunkState | "retrying";
