/** @module Backoff and the retry classes of delayed-event calls (SPEC section 11). */

/** First wait of a backoff. */
export const BACKOFF_INITIAL_MS = 1_000;
/** Each wait grows by this factor. */
export const BACKOFF_FACTOR = 1.5;
/** No wait is longer than this. */
export const BACKOFF_MAX_MS = 60_000;

/** Exponential backoff with ±50 % jitter: 1 s, 1.5 s, 2.25 s … up to 60 s. */
export class Backoff {
  #next = BACKOFF_INITIAL_MS;
  readonly #random: () => number;

  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  /** The next wait in milliseconds. */
  next(): number {
    const base = this.#next;
    this.#next = Math.min(base * BACKOFF_FACTOR, BACKOFF_MAX_MS);
    return Math.min(base * (0.5 + this.#random()), BACKOFF_MAX_MS);
  }
}

/** How a restart or send call ended. */
export type CallOutcome =
  | { kind: "ok" }
  | { kind: "notFound" }
  /** Try again; after `afterMs` when the server said so. */
  | { kind: "retry"; reason: string; afterMs?: number };

/**
 * Classifies a homeserver answer: 200/204 ok, 404 not found, 429 retry
 * after the server's hint (`Retry-After` seconds or HTTP date, else
 * `retry_after_ms` rounded up to whole seconds), anything else retry.
 */
export function classifyAnswer(
  status: number,
  headers: Headers,
  body: string,
  now: number,
): CallOutcome {
  if (status === 200 || status === 204) return { kind: "ok" };
  if (status === 404) return { kind: "notFound" };
  const reason = `HTTP ${status}`;
  if (status !== 429) return { kind: "retry", reason };
  const afterMs = retryAfterMs(headers.get("Retry-After"), body, now);
  return afterMs === undefined
    ? { kind: "retry", reason }
    : { kind: "retry", reason, afterMs };
}

function retryAfterMs(
  header: string | null,
  body: string,
  now: number,
): number | undefined {
  if (header !== null) {
    const text = header.trim();
    if (/^\d+$/.test(text)) return Number(text) * 1000;
    const date = Date.parse(text);
    if (!Number.isNaN(date)) return Math.max(0, date - now);
  }
  try {
    const ms = JSON.parse(body)?.retry_after_ms;
    if (typeof ms === "number" && ms >= 0) {
      return Math.ceil(ms / 1000) * 1000;
    }
  } catch {
    // No usable body: fall back to the normal backoff.
  }
  return undefined;
}
