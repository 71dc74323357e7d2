import { Cluster, type Redis } from "ioredis";
import type { DurabilityReport } from "../../domain/durability.js";

/**
 * Whether a Redis (or every node of a Redis Cluster) keeps what the queue accepted:
 *
 * - `maxmemory-policy noeviction`: any other policy lets Redis delete queue keys under memory
 *   pressure, silently (an error: accepted chunks and job records vanish);
 * - `appendonly yes`: without the AOF a restart loses everything since the last snapshot (error);
 * - `appendfsync always`: `everysec` (Redis' default) or `no` can lose up to a second (or more)
 *   of acknowledged writes on a crash (a warning: a window of loss, not a standing one).
 *
 * Settings are read with CONFIG GET. Managed Redis often disables CONFIG (`rename-command CONFIG
 * ""`, or an ACL); then INFO persistence/memory gives `aof_enabled` and `maxmemory_policy` but not
 * appendfsync, and the report says so. When neither can be read the report is `verified: false`
 * with a problem saying durability is unverified: never a silent pass.
 */
export interface RedisDurabilityReport extends DurabilityReport {
  queue: "redis";
  /** Where the settings were read: CONFIG GET, the INFO fallback, or nowhere (all refused). */
  source: "config" | "info" | "none";
  maxmemoryPolicy: string | null;
  appendonly: string | null;
  appendfsync: string | null;
  /** Per node, for a Cluster (the top-level values then list each distinct value, comma-separated). */
  nodes?: RedisNodeDurability[];
  checkedAt: string;
}

export interface RedisNodeDurability {
  address: string;
  source: "config" | "info" | "none";
  maxmemoryPolicy: string | null;
  appendonly: string | null;
  appendfsync: string | null;
  /** Why CONFIG (and INFO) could not be used, e.g. "ERR unknown command 'config'". */
  refused: string[];
}

type Problem = { severity: "error" | "warning"; message: string };

const DEFAULT_TIMEOUT_MS = 5000;

export async function checkRedisDurability(
  client: Redis | Cluster,
  options: { timeoutMs?: number } = {},
): Promise<RedisDurabilityReport> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  // Every node, replicas too: a replica with another policy becomes the master on failover.
  const nodes = client instanceof Cluster ? client.nodes("all") : [client];
  const readings = await Promise.all(nodes.map((node) => readNode(node, timeoutMs)));
  if (readings.length === 0) {
    // A Cluster client that has not connected yet knows no node: nothing was checked.
    readings.push(unread("cluster", ["the cluster client knows no node yet"]));
  }
  const problems: Problem[] = [];
  for (const reading of readings) {
    const where = client instanceof Cluster ? `${reading.address}: ` : "";
    for (const problem of judge(reading)) problems.push({ ...problem, message: where + problem.message });
  }
  const distinct = (pick: (r: RedisNodeDurability) => string | null): string | null => {
    const values = [...new Set(readings.map(pick))];
    return values.includes(null) ? null : values.join(",");
  };
  const source = readings.some((r) => r.source === "none")
    ? "none"
    : readings.some((r) => r.source === "info")
      ? "info"
      : "config";
  const verified = readings.every(isComplete);
  const report: RedisDurabilityReport = {
    queue: "redis",
    verified,
    severity: problems.some((p) => p.severity === "error") ? "error" : problems.length > 0 ? "warning" : "ok",
    problems: problems.map((p) => p.message),
    source,
    maxmemoryPolicy: distinct((r) => r.maxmemoryPolicy),
    appendonly: distinct((r) => r.appendonly),
    appendfsync: distinct((r) => r.appendfsync),
    checkedAt: new Date().toISOString(),
  };
  if (client instanceof Cluster) report.nodes = readings;
  return report;
}

/** appendfsync matters only with the AOF on; with it off, that is the problem to report. */
function isComplete(reading: RedisNodeDurability): boolean {
  if (reading.maxmemoryPolicy === null || reading.appendonly === null) return false;
  return reading.appendonly !== "yes" || reading.appendfsync !== null;
}

function judge(reading: RedisNodeDurability): Problem[] {
  if (reading.source === "none") {
    return [
      {
        severity: "warning",
        message: `durability unverified: neither CONFIG GET nor INFO could be read (${reading.refused.join("; ")}); make sure Redis runs with maxmemory-policy noeviction, appendonly yes and appendfsync always`,
      },
    ];
  }
  const problems: Problem[] = [];
  const { maxmemoryPolicy: policy, appendonly, appendfsync } = reading;
  if (policy === null) {
    problems.push({ severity: "warning", message: "maxmemory-policy unverified: it could not be read" });
  } else if (policy !== "noeviction") {
    problems.push({
      severity: "error",
      message: `maxmemory-policy is ${policy}: under memory pressure Redis evicts keys, and queued chunks or job records vanish; set maxmemory-policy noeviction (a full Redis then refuses writes, which the server reports)`,
    });
  }
  if (appendonly === null) {
    problems.push({ severity: "warning", message: "appendonly unverified: it could not be read" });
  } else if (appendonly !== "yes") {
    problems.push({
      severity: "error",
      message: `appendonly is ${appendonly}: without the AOF a Redis restart loses every chunk accepted since the last snapshot; set appendonly yes`,
    });
  } else if (appendfsync === null) {
    const why =
      reading.source === "info"
        ? `INFO does not show it and CONFIG was refused (${reading.refused.join("; ")})`
        : "it could not be read";
    problems.push({
      severity: "warning",
      message: `appendfsync unverified: ${why}; unless it is always, a Redis crash can lose up to a second of accepted chunks`,
    });
  } else if (appendfsync !== "always") {
    problems.push({
      severity: "warning",
      message: `appendfsync is ${appendfsync}: a Redis crash can lose up to a second of accepted chunks (more with no); set appendfsync always`,
    });
  }
  return problems;
}

async function readNode(node: Redis, timeoutMs: number): Promise<RedisNodeDurability> {
  const address = `${node.options.host ?? "?"}:${node.options.port ?? "?"}`;
  const refused: string[] = [];
  try {
    const get = async (name: string): Promise<string | null> => {
      const reply = (await withTimeout(node.config("GET", name), timeoutMs)) as string[];
      // [name, value]; an empty reply means this Redis does not know the setting.
      return reply[1] ?? null;
    };
    return {
      address,
      source: "config",
      maxmemoryPolicy: await get("maxmemory-policy"),
      appendonly: await get("appendonly"),
      appendfsync: await get("appendfsync"),
      refused,
    };
  } catch (error) {
    refused.push(`CONFIG GET: ${messageOf(error)}`);
  }
  try {
    const persistence = parseInfo(await withTimeout(node.info("persistence"), timeoutMs));
    const memory = parseInfo(await withTimeout(node.info("memory"), timeoutMs));
    const aof = persistence.get("aof_enabled");
    return {
      address,
      source: "info",
      maxmemoryPolicy: memory.get("maxmemory_policy") ?? null,
      appendonly: aof === undefined ? null : aof === "1" ? "yes" : "no",
      appendfsync: null,
      refused,
    };
  } catch (error) {
    refused.push(`INFO: ${messageOf(error)}`);
  }
  return unread(address, refused);
}

function unread(address: string, refused: string[]): RedisNodeDurability {
  return { address, source: "none", maxmemoryPolicy: null, appendonly: null, appendfsync: null, refused };
}

/** `INFO section` text: "# Section\r\nkey:value\r\n..." */
function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0 && !line.startsWith("#")) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return fields;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
