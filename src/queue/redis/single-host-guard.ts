import { hostname } from "node:os";
import { hashTaggedPrefix, openRedis, type RedisClient } from "./redis-connection.js";

const HEARTBEAT_SECONDS = 30;

/**
 * Atomic claim: KEYS[1] holds the host using the SQLite store with this queue. Free, or already
 * ours: (re)claim it for ARGV[2] seconds and answer ''. Held by another host: answer that host.
 */
const CLAIM = `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return holder end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
return ''
`;

/**
 * The embedded SQLite store is safe for several processes only on one host (WAL over a local file).
 * With a shared Redis queue, every process using that store claims one key for its host, atomically
 * and again every few seconds; a process that finds another host's claim refuses to start. That is
 * as far as a process can tell: two hosts mounting one network file system, or containers of one
 * host with different hostnames, are told apart only by hostname, and the docs say so.
 */
export class SingleHostGuard {
  private readonly redis: RedisClient;
  private readonly key: string;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    url: string,
    prefix: string,
    private readonly host = hostname(),
    private readonly onConflict: (otherHost: string) => void = () => {},
  ) {
    this.redis = openRedis(url, { lazyConnect: true, maxRetriesPerRequest: 2 });
    this.redis.on("error", () => {});
    this.key = `${hashTaggedPrefix(prefix)}:sqlite-host`;
  }

  /** Throws if a process on another host uses the SQLite store with this queue. */
  async claim(): Promise<void> {
    await this.redis.connect();
    const other = await this.tryClaim();
    if (other !== "") {
      await this.redis.quit();
      throw new Error(
        `VECTOR_STORE=sqlite is shared through one local file, but a process on ${other} uses it with this queue ` +
          `(its claim lapses ${HEARTBEAT_SECONDS} s after its last process stops). ` +
          "Run every process on one host, or use VECTOR_STORE=qdrant.",
      );
    }
    this.timer = setInterval(() => void this.heartbeat(), (HEARTBEAT_SECONDS * 1000) / 3);
    this.timer.unref();
  }

  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    // The claim is not deleted: other processes of this host may still use the store; it lapses.
    await this.redis.quit().catch(() => {});
  }

  private async tryClaim(): Promise<string> {
    return String(await this.redis.eval(CLAIM, 1, this.key, this.host, HEARTBEAT_SECONDS));
  }

  private async heartbeat(): Promise<void> {
    try {
      const other = await this.tryClaim();
      // Only possible if our claim lapsed (Redis unreachable for 30 s) and another host took it.
      if (other !== "") this.onConflict(other);
    } catch {
      // Redis unreachable: the queue reports that itself; the claim is renewed when it is back.
    }
  }
}
