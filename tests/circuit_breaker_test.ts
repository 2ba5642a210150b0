/** @module Unit tests of the per-homeserver circuit breaker, on an injected clock. */

import assert from "node:assert/strict";
import { CircuitBreakers, CircuitOpenError } from "../lib/circuit_breaker.ts";

function breakers(threshold = 3, cooldownMs = 1000) {
  const clock = { now: 0 };
  const b = new CircuitBreakers({
    failureThreshold: threshold,
    cooldownMs,
    now: () => clock.now,
  });
  return { b, clock };
}

Deno.test("CircuitBreakers opens a circuit after the threshold of consecutive failures", () => {
  const { b } = breakers(3);
  b.failure("hs");
  b.failure("hs");
  b.admit("hs");
  b.failure("hs");
  assert.equal(b.state("hs"), "open");
  assert.throws(() => b.admit("hs"), (err: unknown) => {
    assert.ok(err instanceof CircuitOpenError);
    assert.equal(err.retryAfterMs, 1000);
    return true;
  });
  assert.equal(b.openCount, 1);
});

Deno.test("CircuitBreakers forgets failures after a success", () => {
  const { b } = breakers(2);
  b.failure("hs");
  b.success("hs");
  b.failure("hs");
  assert.equal(b.state("hs"), "closed");
});

Deno.test("CircuitBreakers keeps homeservers apart", () => {
  const { b } = breakers(1);
  b.failure("dead");
  assert.throws(() => b.admit("dead"), CircuitOpenError);
  b.admit("alive");
});

Deno.test("CircuitBreakers lets one trial through after the cool-down; success closes", () => {
  const { b, clock } = breakers(1, 1000);
  b.failure("hs");
  clock.now = 999;
  assert.throws(() => b.admit("hs"), CircuitOpenError);
  clock.now = 1000;
  b.admit("hs");
  assert.equal(b.state("hs"), "halfOpen");
  assert.throws(() => b.admit("hs"), CircuitOpenError, "one trial at a time");
  b.success("hs");
  assert.equal(b.state("hs"), "closed");
  assert.equal(b.openCount, 0);
});

Deno.test("CircuitBreakers reopens when the trial fails", () => {
  const { b, clock } = breakers(5, 1000);
  for (let i = 0; i < 5; i++) b.failure("hs");
  clock.now = 1000;
  b.admit("hs");
  b.failure("hs");
  assert.equal(b.state("hs"), "open");
  assert.throws(() => b.admit("hs"), CircuitOpenError);
  clock.now = 2000;
  b.admit("hs");
});

Deno.test("CircuitBreakers with a threshold of 0 never opens", () => {
  const { b } = breakers(0);
  for (let i = 0; i < 100; i++) b.failure("hs");
  b.admit("hs");
  assert.equal(b.openCount, 0);
});
