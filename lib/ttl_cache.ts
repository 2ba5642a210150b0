/** @module A bounded cache whose entries expire, telling each hit and miss. */

/** A found entry; `value` may itself be undefined (a remembered "nothing"). */
export interface CacheHit<V> {
  value: V;
}

/** Entries expire after their own lifetime; past `maxEntries` the oldest go first. */
export class TtlCache<V> {
  readonly #entries = new Map<string, { value: V; expires: number }>();
  readonly #now: () => number;
  readonly #maxEntries: number;
  readonly #onLookup: (hit: boolean) => void;

  constructor(
    options: {
      now?: () => number;
      maxEntries?: number;
      /** Told of every look-up, for metrics. */
      onLookup?: (hit: boolean) => void;
    } = {},
  ) {
    this.#now = options.now ?? Date.now;
    this.#maxEntries = options.maxEntries ?? 10_000;
    this.#onLookup = options.onLookup ?? (() => {});
  }

  /** The live entry for `key`, or undefined (counted as a miss). */
  get(key: string): CacheHit<V> | undefined {
    const entry = this.#entries.get(key);
    if (entry !== undefined && entry.expires > this.#now()) {
      this.#onLookup(true);
      return entry;
    }
    if (entry !== undefined) this.#entries.delete(key);
    this.#onLookup(false);
    return undefined;
  }

  /** Keeps `value` for `ttlMs`; a lifetime of 0 or less forgets the key. */
  set(key: string, value: V, ttlMs: number): void {
    this.#entries.delete(key);
    if (ttlMs <= 0) return;
    // Maps keep insertion order, so the first key is the oldest.
    if (this.#entries.size >= this.#maxEntries) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
    this.#entries.set(key, { value, expires: this.#now() + ttlMs });
  }
}
