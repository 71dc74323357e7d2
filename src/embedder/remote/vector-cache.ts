/**
 * Vectors a remote engine already returned, by the exact input sent (prefix included). A batch that
 * fails in part (a 429 on one of its requests, a 400 for one text) is retried by the pipeline, whole or
 * chunk by chunk; the texts that were embedded come from here instead of going to the engine (and its
 * bill, and its rate limit) again. Least recently used entries go first once the byte budget is spent.
 */
import { createHash } from "node:crypto";

export class VectorCache {
  /** Insertion order is recency order: a hit is moved to the end. */
  private readonly entries = new Map<string, Float32Array>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  /** The key of an input: a digest, so long texts do not sit in memory twice. */
  static key(input: string): string {
    return createHash("sha256").update(input).digest("base64");
  }

  get(key: string): Float32Array | undefined {
    const vector = this.entries.get(key);
    if (vector) {
      this.entries.delete(key);
      this.entries.set(key, vector);
    }
    return vector;
  }

  set(key: string, vector: Float32Array): void {
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      this.bytes -= old.byteLength;
    }
    this.entries.set(key, vector);
    this.bytes += vector.byteLength;
    for (const [oldest, evicted] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= evicted.byteLength;
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
