/** @module Unit tests of the token-bucket rate limiter, on an injected clock. */

import assert from "node:assert/strict";
import { RateLimiter } from "../lib/rate_limit.ts";

Deno.test("RateLimiter allows a burst, then one request per 1/rate seconds", () => {
  const clock = { now: 0 };
  const limiter = new RateLimiter({
    perSecond: 2,
    burst: 3,
    now: () => clock.now,
  });
  assert.deepEqual([limiter.take("a"), limiter.take("a"), limiter.take("a")], [
    0,
    0,
    0,
  ]);
  assert.equal(limiter.take("a"), 500);
  clock.now = 499;
  assert.equal(limiter.take("a"), 1);
  clock.now = 500;
  assert.equal(limiter.take("a"), 0);
});

Deno.test("RateLimiter keeps a bucket per client", () => {
  const limiter = new RateLimiter({ perSecond: 1, burst: 1, now: () => 0 });
  assert.equal(limiter.take("a"), 0);
  assert.equal(limiter.take("b"), 0);
  assert.ok(limiter.take("a") > 0);
});

Deno.test("RateLimiter with a rate of 0 never limits", () => {
  const limiter = new RateLimiter({ perSecond: 0, burst: 1 });
  for (let i = 0; i < 1000; i++) assert.equal(limiter.take("a"), 0);
});

Deno.test("RateLimiter refills no further than the burst", () => {
  const clock = { now: 0 };
  const limiter = new RateLimiter({
    perSecond: 10,
    burst: 2,
    now: () => clock.now,
  });
  clock.now = 60_000;
  assert.equal(limiter.take("a"), 0);
  assert.equal(limiter.take("a"), 0);
  assert.ok(limiter.take("a") > 0);
});
