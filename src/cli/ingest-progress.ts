import { formatDuration } from "./client-options.js";

/** What `rag-embed ingest` knows at a moment. */
export interface ProgressView {
  /** Chunks the server acknowledged (202): the work it owes us. */
  accepted: number;
  /** Of those, stored (or unchanged: already stored). */
  stored: number;
  /** Of those, dead letters: they will not be stored without a replay. */
  dead: number;
  /** Records of the file handled so far (sent, or skipped as empty). */
  sent: number;
  /** Records in the file, once counted. */
  total: number | undefined;
  /** The server's drain rate. */
  chunksPerSecond: number;
  tokensPerSecond: number;
  /** Seconds until everything left is stored, if it can be told. */
  etaSeconds: number | undefined;
}

const count = new Intl.NumberFormat("en-US");
const rate = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

/**
 * One line: stored out of accepted first (the number that matters: what is searchable), then what
 * was sent of the file, the rates and the time left. Every number is finite or shown as "?".
 */
export function formatProgress(view: ProgressView): string {
  const percent = view.accepted > 0 ? Math.floor((100 * view.stored) / view.accepted) : 0;
  const parts = [
    `${count.format(view.stored)}/${count.format(view.accepted)} stored (${percent}%)`,
    ...(view.dead > 0 ? [`${count.format(view.dead)} dead`] : []),
    `sent ${count.format(view.sent)}/${view.total === undefined ? "?" : count.format(view.total)}`,
    `${rate.format(view.chunksPerSecond)} chunks/s, ${count.format(Math.round(view.tokensPerSecond))} tok/s`,
    `ETA ${formatDuration(view.etaSeconds)}`,
  ];
  return parts.join(" | ");
}

/**
 * How fast this ingest's chunks are being stored, over the last `windowMs`: the ETA divides what is
 * left by it (the server's own rate also counts other clients' work).
 */
export class StoredRate {
  private readonly points: Array<{ at: number; stored: number }> = [];

  constructor(
    private readonly windowMs = 30_000,
    private readonly now: () => number = Date.now,
  ) {}

  add(stored: number): void {
    const at = this.now();
    this.points.push({ at, stored });
    while (this.points.length > 2 && (this.points[0]?.at ?? at) < at - this.windowMs) this.points.shift();
  }

  /** Chunks per second, or undefined before two points a moment apart. */
  perSecond(): number | undefined {
    const first = this.points[0];
    const last = this.points.at(-1);
    if (!first || !last || last.at - first.at < 1000) return undefined;
    return (last.stored - first.stored) / ((last.at - first.at) / 1000);
  }
}

/** Seconds to store `left` chunks at `perSecond`; undefined when that cannot be told. */
export function etaSeconds(left: number, perSecond: number | undefined): number | undefined {
  if (left <= 0) return 0;
  if (perSecond === undefined || !(perSecond > 0)) return undefined;
  return left / perSecond;
}

/** A 24-cell bar of `done` out of `total`. */
export function bar(done: number, total: number, width = 24): string {
  const filled = total > 0 ? Math.min(width, Math.floor((width * done) / total)) : 0;
  return `${"█".repeat(filled)}${"░".repeat(width - filled)}`;
}

/**
 * On a terminal, a bar of stored/accepted redrawn in place on stderr; elsewhere (logs, CI) the same
 * line every few seconds. Notes (retries, waiting) are printed on lines of their own above the bar,
 * which is drawn again below them, and the final bar stays on screen above the summary.
 */
export class ProgressDisplay {
  private lastLine = 0;
  private stopped = false;
  private view: ProgressView | undefined;

  constructor(
    private readonly terminal: NodeJS.WriteStream | undefined,
    private readonly log: (line: string) => void,
  ) {}

  update(view: ProgressView): void {
    if (this.stopped) return;
    this.view = view;
    if (this.terminal) {
      this.draw(this.terminal);
      return;
    }
    const now = Date.now();
    if (now - this.lastLine < 2000) return;
    this.lastLine = now;
    this.log(`ingest: ${formatProgress(view)}`);
  }

  note(message: string): void {
    if (!this.terminal || this.stopped) {
      this.log(message);
      return;
    }
    this.terminal.write(`\r\x1b[K${message}\n`);
    this.draw(this.terminal);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (!this.view) return;
    if (this.terminal) {
      this.draw(this.terminal);
      this.terminal.write("\n");
    } else {
      this.log(`ingest: ${formatProgress(this.view)}`);
    }
  }

  private draw(terminal: NodeJS.WriteStream): void {
    if (!this.view) return;
    const line = `${bar(this.view.stored, this.view.accepted)} ${formatProgress(this.view)}`;
    // Never wider than the terminal: a wrapped line could not be redrawn in place.
    terminal.write(`\r\x1b[K${line.slice(0, Math.max(20, (terminal.columns ?? 120) - 1))}`);
  }
}
