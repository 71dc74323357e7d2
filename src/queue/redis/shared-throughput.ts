import { hostname } from "node:os";
import type { Rates, ThroughputMeter, ThroughputSource } from "../../observability/throughput-meter.js";
import { hashTaggedPrefix, openRedis, type RedisClient } from "./redis-connection.js";

const PUBLISH_EVERY_MS = 1000;
/** A worker silent for this long (dead, or cut off from Redis) no longer counts. */
const STALE_AFTER_MS = 5000;

interface Published extends Rates {
  /** Redis server time of the publication, ms. */
  at: number;
}

/**
 * Throughput of the whole deployment: every worker publishes its own measured rates each second
 * into one Redis hash (a field per worker process), and every process sums the fresh fields. An API
 * instance, which embeds nothing itself, can then compute Retry-After and the drain estimate from
 * what the workers really achieve.
 *
 * One hash, not a key per worker: finding per-worker keys would mean SCANning a keyspace that holds
 * a key per chunk ever accepted. Freshness is judged on the Redis server's clock, so workers on hosts
 * with skewed clocks are compared fairly; a dead worker's field is removed once stale.
 */
export class SharedThroughput implements ThroughputSource {
  private readonly redis: RedisClient;
  private readonly key: string;
  private readonly field: string;
  private cached: Rates | null = null;
  private readonly timer: NodeJS.Timeout;
  private refreshing = false;

  constructor(
    url: string,
    prefix: string,
    private readonly local: ThroughputMeter,
    private readonly publishes: boolean,
    /** This process's field in the hash. */
    publisherId = `${hostname()}:${process.pid}`,
  ) {
    this.redis = openRedis(url, { maxRetriesPerRequest: 1 });
    // A Redis outage only makes these figures stale; the queue reports the outage itself.
    this.redis.on("error", () => {});
    this.key = `${hashTaggedPrefix(prefix)}:throughput`;
    this.field = publisherId;
    this.timer = setInterval(() => void this.tick(), PUBLISH_EVERY_MS);
    this.timer.unref();
  }

  rates(): Rates {
    return this.cached ?? this.local.rates();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    if (this.publishes) await this.redis.hdel(this.key, this.field).catch(() => 0);
    await this.redis.quit().catch(() => "");
  }

  /** One refresh at a time: a slow Redis must not pile up refreshes. */
  private async tick(): Promise<void> {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      await this.refresh();
    } catch {
      // Stale figures until Redis answers again.
    } finally {
      this.refreshing = false;
    }
  }

  private async refresh(): Promise<void> {
    const [seconds, micros] = await this.redis.time();
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    if (this.publishes) {
      const published: Published = { ...this.local.rates(), at: now };
      await this.redis.hset(this.key, this.field, JSON.stringify(published));
    }
    const all = await this.redis.hgetall(this.key);
    const sum: Rates = { chunksPerSecond: 0, tokensPerSecond: 0 };
    const stale: string[] = [];
    for (const [field, value] of Object.entries(all)) {
      const rates = parse(value);
      if (!rates || now - rates.at > STALE_AFTER_MS) {
        stale.push(field);
        continue;
      }
      sum.chunksPerSecond += rates.chunksPerSecond;
      sum.tokensPerSecond += rates.tokensPerSecond;
    }
    if (stale.length > 0) await this.redis.hdel(this.key, ...stale);
    this.cached = sum;
  }
}

function parse(value: string): Published | null {
  try {
    const parsed = JSON.parse(value) as Partial<Published>;
    const at = Number(parsed.at);
    if (!Number.isFinite(at)) return null;
    return {
      at,
      chunksPerSecond: Number(parsed.chunksPerSecond) || 0,
      tokensPerSecond: Number(parsed.tokensPerSecond) || 0,
    };
  } catch {
    return null;
  }
}
