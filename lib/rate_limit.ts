/** @module A token bucket per client, for the token routes. */

export interface RateLimitOptions {
  /** Tokens added per second; 0 turns the limit off. */
  perSecond: number;
  /** Bucket size: requests a client may make at once. */
  burst: number;
  now?: () => number;
  /** Buckets kept at most; idle full buckets are dropped first. */
  maxClients?: number;
}

/** Per-key token buckets. */
export class RateLimiter {
  readonly #perMs: number;
  readonly #burst: number;
  readonly #now: () => number;
  readonly #maxClients: number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(options: RateLimitOptions) {
    this.#perMs = options.perSecond / 1000;
    this.#burst = options.burst;
    this.#now = options.now ?? Date.now;
    this.#maxClients = options.maxClients ?? 100_000;
  }

  /** Takes one token for `key`: 0 when allowed, else the milliseconds until one is there. */
  take(key: string): number {
    if (this.#perMs === 0) return 0;
    const now = this.#now();
    const bucket = this.#buckets.get(key) ?? { tokens: this.#burst, at: now };
    bucket.tokens = Math.min(
      this.#burst,
      bucket.tokens + (now - bucket.at) * this.#perMs,
    );
    bucket.at = now;
    // Re-inserted so that the Map's order is least recently used first.
    this.#buckets.delete(key);
    this.#buckets.set(key, bucket);
    if (this.#buckets.size > this.#maxClients) {
      this.#buckets.delete(this.#buckets.keys().next().value!);
    }
    // The epsilon absorbs floating-point dust from many small refills.
    if (bucket.tokens >= 1 - 1e-9) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.#perMs - 1e-6));
  }
}
