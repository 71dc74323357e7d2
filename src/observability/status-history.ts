/** One point of the dashboard's chart: the queue and the drain rate at `t` (epoch ms). */
export interface StatusSample {
  t: number;
  pendingChunks: number;
  runningChunks: number;
  pendingTokens: number;
  chunksPerSecond: number;
  tokensPerSecond: number;
}

export interface StatusHistoryOptions {
  intervalMs?: number;
  /** Samples kept; the oldest is dropped beyond it (default 300: five minutes at one a second). */
  capacity?: number;
  now?: () => number;
}

/**
 * The last minutes of queue depth and throughput, sampled by the server whether or not anyone
 * watches, so a dashboard opened now shows what happened before it was opened. A fixed-size ring:
 * memory stays the same however long the server runs.
 */
export class StatusHistory {
  readonly intervalMs: number;
  private readonly ring: Array<StatusSample | undefined>;
  private next = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(
    private readonly read: () => Promise<Omit<StatusSample, "t">>,
    options: StatusHistoryOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 1000;
    this.ring = new Array(options.capacity ?? 300).fill(undefined);
    this.now = options.now ?? Date.now;
  }

  start(): void {
    if (this.timer) return;
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Takes one sample now; a failed read (the queue briefly unreachable) leaves a gap, not an error. */
  async sample(): Promise<void> {
    const t = this.now();
    try {
      this.add({ ...(await this.read()), t });
    } catch {
      // the chart shows the gap
    }
  }

  add(sample: StatusSample): void {
    this.ring[this.next] = sample;
    this.next = (this.next + 1) % this.ring.length;
  }

  /** Oldest first. */
  samples(): StatusSample[] {
    const ordered = [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
    return ordered.filter((sample): sample is StatusSample => sample !== undefined);
  }
}
