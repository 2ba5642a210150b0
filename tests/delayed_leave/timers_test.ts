/** @module Unit tests of the shared timer queue of delayed-leave jobs. */

import assert from "node:assert/strict";
import { pendingSleeps, Phase, sleep } from "../../lib/delayed_leave/timers.ts";

Deno.test("sleeps wake in the order they are due, not the order they began", async () => {
  const phase = new Phase();
  const woke: number[] = [];
  await Promise.all(
    [60, 20, 40, 0].map((ms) =>
      sleep(ms, phase).then((ran) => {
        assert(ran);
        woke.push(ms);
      })
    ),
  );
  assert.deepEqual(woke, [0, 20, 40, 60]);
  assert.deepEqual(pendingSleeps(), 0);
});

Deno.test("sleeps due at the same time wake in the order they began", async () => {
  const phase = new Phase();
  const woke: string[] = [];
  const names = ["a", "b", "c", "d", "e"];
  await Promise.all(
    names.map((name) => sleep(15, phase).then(() => woke.push(name))),
  );
  assert.deepEqual(woke, names);
});

Deno.test("a sleep shorter than the pending ones wakes on time", async () => {
  const phase = new Phase();
  const long = sleep(2_000, phase);
  const started = performance.now();
  assert.deepEqual(await sleep(20, phase), true);
  const took = performance.now() - started;
  assert(took >= 19 && took < 1_000, `the 20 ms sleep took ${took} ms`);
  phase.stop();
  assert.deepEqual(await long, false);
});

Deno.test("a sleep never wakes before its time", async () => {
  const phase = new Phase();
  const checks = [1, 5, 12, 30, 31, 47].map(async (ms) => {
    const started = performance.now();
    await sleep(ms, phase);
    const took = performance.now() - started;
    assert(took >= ms - 0.5, `a ${ms} ms sleep woke after ${took} ms`);
  });
  await Promise.all(checks);
});

Deno.test("stopping a phase ends its sleeps at once with false, and only its own", async () => {
  const stopped = new Phase();
  const other = new Phase();
  const a = sleep(5_000, stopped);
  const b = sleep(10_000, stopped);
  const c = sleep(30, other);
  assert.deepEqual(pendingSleeps(), 3);
  const started = performance.now();
  stopped.stop();
  assert.deepEqual(await a, false);
  assert.deepEqual(await b, false);
  assert(performance.now() - started < 100);
  assert.deepEqual(pendingSleeps(), 1);
  assert.deepEqual(await c, true);
  assert.deepEqual(pendingSleeps(), 0);
});

Deno.test("a stopped phase does not sleep again", async () => {
  const phase = new Phase();
  phase.stop();
  assert(phase.stopped);
  assert.deepEqual(await sleep(10_000, phase), false);
  assert.deepEqual(pendingSleeps(), 0);
});

Deno.test("many sleeps with random stops: each resolves once, in due order or at its stop", async () => {
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const phases = Array.from({ length: 50 }, () => new Phase());
  const stopAt = phases.map(() => (random() < 0.5 ? random() * 80 : Infinity));
  const outcomes = new Map<number, boolean>();
  /** When each sleep that ran to its end was due, in the order they woke. */
  const dueOfWoken: number[] = [];
  const sleeps: Promise<void>[] = [];
  for (let i = 0; i < 500; i++) {
    const p = Math.floor(random() * phases.length);
    const ms = random() * 100;
    const started = performance.now();
    sleeps.push(
      sleep(ms, phases[p]!).then((ran) => {
        assert(!outcomes.has(i), `sleep ${i} resolved twice`);
        outcomes.set(i, ran);
        const took = performance.now() - started;
        if (ran) {
          assert(took >= ms - 0.5, `sleep ${i} woke early`);
          dueOfWoken.push(started + ms);
        } else assert(phases[p]!.stopped, `sleep ${i} ended without a stop`);
      }),
    );
  }
  const stops = phases.map((phase, p) =>
    stopAt[p] === Infinity
      ? Promise.resolve()
      : new Promise<void>((resolve) =>
        setTimeout(() => {
          phase.stop();
          resolve();
        }, stopAt[p])
      )
  );
  await Promise.all([...sleeps, ...stops]);
  assert.deepEqual(outcomes.size, 500);
  assert.deepEqual(dueOfWoken, dueOfWoken.toSorted((a, b) => a - b));
  assert([...outcomes.values()].includes(true));
  assert([...outcomes.values()].includes(false));
  assert.deepEqual(pendingSleeps(), 0);
});
