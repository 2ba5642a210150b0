/** @module Exhaustive tests of the delayed-leave state machine (SPEC 11's table), no timers. */

import assert from "node:assert/strict";
import {
  isLive,
  JOB_SIGNALS,
  JOB_STATES,
  type JobEffect,
  type JobSignal,
  type JobState,
  transition,
} from "../../lib/delayed_leave/machine.ts";

/** SPEC 11's table, written out pair by pair; every pair not listed is ignored. */
const EXPECTED: [JobState, JobSignal, JobState, JobEffect[]][] = [
  ["Waiting", "participantConnected", "Connected", [
    "stop",
    "startRestarting",
    "startPresenceChecks",
  ]],
  ["Waiting", "participantFound", "Connected", [
    "stop",
    "startRestarting",
    "startPresenceChecks",
  ]],
  ["Waiting", "connectionAborted", "Aborted", ["stop", "finish"]],
  ["Waiting", "waitingTimeout", "Disconnected", ["stop", "sendLeave"]],
  ["Waiting", "replaced", "Replaced", ["stop", "finishKeepingRecord"]],
  ["Connected", "leftIntentionally", "Disconnected", ["stop", "sendLeave"]],
  ["Connected", "connectionAborted", "Disconnected", ["stop", "sendLeave"]],
  ["Connected", "presenceGone", "Disconnected", ["stop", "sendLeave"]],
  ["Connected", "restartFailed", "Aborted", ["stop", "finish"]],
  ["Connected", "delayedEventNotFound", "Aborted", ["stop", "finish"]],
  ["Connected", "csApiUnresolvable", "Aborted", ["stop", "finish"]],
  ["Connected", "replaced", "Replaced", ["stop", "finishKeepingRecord"]],
  ["Disconnected", "replaced", "Replaced", ["stop", "finishKeepingRecord"]],
];

for (const state of JOB_STATES) {
  for (const signal of JOB_SIGNALS) {
    const row = EXPECTED.find(([s, g]) => s === state && g === signal);
    const [next, effects] = row ? [row[2], row[3]] : [state, []];
    Deno.test(`transition(${state}, ${signal}) -> ${next}${row ? "" : " (ignored)"}`, () => {
      assert.deepEqual(transition(state, signal), { state: next, effects });
    });
  }
}

Deno.test("every transition that changes state starts by stopping the previous state's work", () => {
  for (const state of JOB_STATES) {
    for (const signal of JOB_SIGNALS) {
      const t = transition(state, signal);
      if (t.state !== state) assert.equal(t.effects[0], "stop");
    }
  }
});

Deno.test("only Waiting, Connected and Disconnected are live; ended states take no signal", () => {
  assert.deepEqual(JOB_STATES.filter(isLive), [
    "Waiting",
    "Connected",
    "Disconnected",
  ]);
  for (const state of ["Aborted", "Replaced"] as const) {
    for (const signal of JOB_SIGNALS) {
      assert.deepEqual(transition(state, signal), { state, effects: [] });
    }
  }
});
