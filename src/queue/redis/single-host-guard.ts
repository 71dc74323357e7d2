import { hostname } from "node:os";
import { Redis } from "ioredis";

const HEARTBEAT_SECONDS = 30;

/**
 * The embedded SQLite store is safe for several processes only on one host (WAL over a local file).
 * With a shared Redis queue, each process using that store announces its host; a process that sees
 * another host refuses to start. That is as far as a process can tell: two hosts mounting one
 * network file system would still be wrong, and the docs say so.
 */
export class SingleHostGuard {
  private readonly redis: Redis;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    url: string,
    private readonly prefix: string,
    private readonly host = hostname(),
  ) {
    this.redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2 });
    this.redis.on("error", () => {});
  }

  /** Throws if a process on another host uses the SQLite store with this queue. */
  async claim(): Promise<void> {
    await this.redis.connect();
    const others: string[] = [];
    let cursor = "0";
    do {
      const [next, keys] = await this.redis.scan(
        cursor,
        "MATCH",
        `${this.prefix}sqlite-host:*`,
        "COUNT",
        100,
      );
      cursor = next;
      for (const key of keys) {
        const host = key.slice(`${this.prefix}sqlite-host:`.length);
        if (host !== this.host) others.push(host);
      }
    } while (cursor !== "0");
    if (others.length > 0) {
      await this.redis.quit();
      throw new Error(
        `VECTOR_STORE=sqlite is shared through one local file, but processes on ${others.join(", ")} use it with this queue too. ` +
          "Run every process on one host, or use VECTOR_STORE=qdrant.",
      );
    }
    await this.beat();
    this.timer = setInterval(() => void this.beat().catch(() => {}), (HEARTBEAT_SECONDS * 1000) / 3);
    this.timer.unref();
  }

  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.redis.quit().catch(() => {});
  }

  private async beat(): Promise<void> {
    await this.redis.set(
      `${this.prefix}sqlite-host:${this.host}`,
      String(process.pid),
      "EX",
      HEARTBEAT_SECONDS,
    );
  }
}
