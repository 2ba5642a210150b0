/** @module Polling helper for tests that wait on something a fake records. */

/**
 * Resolves once `predicate()` returns true, checking every 10 ms; rejects
 * when it is still false after `timeoutMs`. It uses real time, so it does
 * not advance under fake timers; no timer outlives it, which keeps Deno's
 * op sanitizer quiet.
 */
export async function waitFor(
  predicate: () => boolean,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() >= deadline) {
      throw new Error(`waitFor: condition still false after ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
