/** @module Unit tests of the retry classes and the backoff (SPEC 11). */

import assert from "node:assert/strict";
import { Backoff, classifyAnswer } from "../../lib/delayed_leave/retry.ts";

const NOW = Date.parse("2026-11-22T10:00:00Z");

Deno.test("classifyAnswer() takes 200 and 204 as ok and 404 as not found", () => {
  assert.deepEqual(classifyAnswer(200, new Headers(), "{}", NOW), {
    kind: "ok",
  });
  assert.deepEqual(classifyAnswer(204, new Headers(), "", NOW), { kind: "ok" });
  assert.deepEqual(classifyAnswer(404, new Headers(), "{}", NOW), {
    kind: "notFound",
  });
});

Deno.test("classifyAnswer() retries 5xx and other statuses with the normal backoff", () => {
  for (const status of [500, 502, 503, 400, 401, 403, 418]) {
    assert.deepEqual(classifyAnswer(status, new Headers(), "{}", NOW), {
      kind: "retry",
      reason: `HTTP ${status}`,
    });
  }
});

Deno.test("classifyAnswer() waits Retry-After seconds on 429", () => {
  const outcome = classifyAnswer(
    429,
    new Headers({ "Retry-After": "7" }),
    "{}",
    NOW,
  );
  assert.deepEqual(outcome, {
    kind: "retry",
    reason: "HTTP 429",
    afterMs: 7000,
  });
});

Deno.test("classifyAnswer() waits until a Retry-After HTTP date on 429", () => {
  const headers = new Headers({
    "Retry-After": "Sun, 22 Nov 2026 10:00:03 GMT",
  });
  assert.deepEqual(classifyAnswer(429, headers, "{}", NOW), {
    kind: "retry",
    reason: "HTTP 429",
    afterMs: 3000,
  });
});

Deno.test("classifyAnswer() rounds retry_after_ms up to whole seconds on 429", () => {
  const body = JSON.stringify({
    errcode: "M_LIMIT_EXCEEDED",
    retry_after_ms: 1200,
  });
  assert.deepEqual(classifyAnswer(429, new Headers(), body, NOW), {
    kind: "retry",
    reason: "HTTP 429",
    afterMs: 2000,
  });
});

Deno.test("classifyAnswer() prefers Retry-After over retry_after_ms", () => {
  const body = JSON.stringify({ retry_after_ms: 9000 });
  const outcome = classifyAnswer(
    429,
    new Headers({ "Retry-After": "1" }),
    body,
    NOW,
  );
  assert.equal(outcome.kind === "retry" && outcome.afterMs, 1000);
});

Deno.test("classifyAnswer() falls back to the backoff on a 429 without hints", () => {
  assert.deepEqual(classifyAnswer(429, new Headers(), "not json", NOW), {
    kind: "retry",
    reason: "HTTP 429",
  });
});

Deno.test("Backoff grows by 1.5 from 1 s with ±50 % jitter and stops at 60 s", () => {
  const low = new Backoff(() => 0);
  const high = new Backoff(() => 0.999999);
  const lows = Array.from({ length: 20 }, () => low.next());
  const highs = Array.from({ length: 20 }, () => high.next());
  assert.equal(lows[0], 500);
  assert.equal(lows[1], 750);
  assert.ok(Math.abs(highs[0]! - 1500) < 1);
  assert.ok(Math.abs(lows[2]! - 1125) < 1e-9);
  for (const wait of [...lows, ...highs]) assert.ok(wait <= 60_000);
  assert.equal(highs.at(-1), 60_000);
  assert.equal(lows.at(-1), 30_000);
});
