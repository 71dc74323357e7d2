import { hostname } from "node:os";
import { Redis } from "ioredis";
import type { Rates, ThroughputMeter, ThroughputSource } from "../../observability/throughput-meter.js";

const PUBLISH_EVERY_MS = 1000;
const TTL_SECONDS = 5;

/**
 * Throughput of the whole deployment: every worker publishes its own measured rates to Redis each
 * second (with a short TTL, so a dead worker drops out), and every process sums them. An API
 * instance, which embeds nothing itself, can then compute Retry-After and the drain estimate from
 * what the workers really achieve.
 */
export class SharedThroughput implements ThroughputSource {
  private readonly redis: Redis;
  private readonly key: string;
  private cached: Rates | null = null;
  private readonly timer: NodeJS.Timeout;

  constructor(
    url: string,
    private readonly prefix: string,
    private readonly local: ThroughputMeter,
    private readonly publishes: boolean,
  ) {
    this.redis = new Redis(url, { maxRetriesPerRequest: 1 });
    // A Redis outage only makes these figures stale; the queue reports the outage itself.
    this.redis.on("error", () => {});
    this.key = `${prefix}throughput:${hostname()}:${process.pid}`;
    this.timer = setInterval(() => void this.refresh().catch(() => {}), PUBLISH_EVERY_MS);
    this.timer.unref();
  }

  rates(): Rates {
    return this.cached ?? this.local.rates();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    if (this.publishes) await this.redis.del(this.key).catch(() => 0);
    await this.redis.quit().catch(() => "");
  }

  private async refresh(): Promise<void> {
    if (this.publishes) {
      await this.redis.set(this.key, JSON.stringify(this.local.rates()), "EX", TTL_SECONDS);
    }
    const keys: string[] = [];
    let cursor = "0";
    do {
      const [next, found] = await this.redis.scan(
        cursor,
        "MATCH",
        `${this.prefix}throughput:*`,
        "COUNT",
        200,
      );
      cursor = next;
      keys.push(...found);
    } while (cursor !== "0");
    const values = keys.length > 0 ? await this.redis.mget(...keys) : [];
    const sum: Rates = { chunksPerSecond: 0, tokensPerSecond: 0 };
    for (const value of values) {
      if (!value) continue;
      const rates = JSON.parse(value) as Partial<Rates>;
      sum.chunksPerSecond += Number(rates.chunksPerSecond) || 0;
      sum.tokensPerSecond += Number(rates.tokensPerSecond) || 0;
    }
    this.cached = sum;
  }
}
