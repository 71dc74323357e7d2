import { Cluster, Redis, type RedisOptions } from "ioredis";

/** A single Redis or a Redis Cluster: every command this product sends works on both. */
export type RedisClient = Redis | Cluster;

const CLUSTER_SCHEMES = new Set(["redis-cluster:", "rediss-cluster:"]);

/**
 * Opens a client for `QUEUE_URL`: `redis://[user:pass@]host:port[/db]` (or `rediss://`) for one
 * Redis, `redis-cluster://host:port[,host:port...]` (or `rediss-cluster://`) for a Redis Cluster,
 * whose listed nodes are only the seeds: the client discovers the rest.
 */
export function openRedis(url: string, options: RedisOptions = {}): RedisClient {
  const parsed = new URL(url.replace(/,.*$/, ""));
  if (!CLUSTER_SCHEMES.has(parsed.protocol)) return new Redis(url, options);
  const tls = parsed.protocol === "rediss-cluster:";
  const auth = parsed.password ? { password: decodeURIComponent(parsed.password) } : {};
  const user = parsed.username ? { username: decodeURIComponent(parsed.username) } : {};
  const hosts = url
    .replace(/^[a-z-]+:\/\//, "")
    .replace(/^[^@]*@/, "")
    .split(",")
    .map((node) => {
      const [host, port] = node.replace(/\/.*$/, "").split(":");
      return { host: host ?? "127.0.0.1", port: Number(port ?? 6379) };
    });
  return new Cluster(hosts, {
    redisOptions: { ...options, ...auth, ...user, ...(tls ? { tls: {} } : {}) },
    // Fail commands instead of queueing them forever while the cluster is unreachable.
    enableOfflineQueue: options.enableOfflineQueue ?? true,
  });
}

/**
 * Every key of one deployment shares one Redis Cluster hash tag (`{rag}`), so multi-key scripts
 * and BullMQ's own scripts (which need all of a queue's keys in one slot) work on a cluster.
 * A prefix that already has a hash tag is kept as is.
 */
export function hashTaggedPrefix(prefix: string): string {
  const bare = prefix.replace(/:+$/, "");
  if (/\{[^}]+\}/.test(bare)) return bare;
  return `{${bare || "rag"}}`;
}
