/**
 * @module The delayed-leave job as a pure state machine (SPEC section 11):
 * (state, signal) -> (next state, effects). The shell in `job.ts` runs the effects.
 */

/** Where a job is in its life. */
export type JobState =
  | "Waiting"
  | "Connected"
  | "Disconnected"
  | "Aborted"
  | "Replaced";

/** What can happen to a job. */
export type JobSignal =
  /** The SFU's `participant_joined` webhook. */
  | "participantConnected"
  /** The presence look-up found the participant on the SFU. */
  | "participantFound"
  /** `participant_left`/`_connection_aborted` with reason `CLIENT_INITIATED`. */
  | "leftIntentionally"
  /** `participant_left`/`_connection_aborted` for any other reason. */
  | "connectionAborted"
  /** The waiting timer fired before the participant showed up. */
  | "waitingTimeout"
  /** A periodic presence check found the participant gone. */
  | "presenceGone"
  /** Restarting failed until the deadline passed. */
  | "restartFailed"
  /** The homeserver no longer knows the delayed event (404 on restart). */
  | "delayedEventNotFound"
  /** The homeserver's Client-Server API cannot be found. */
  | "csApiUnresolvable"
  /** A newer job took this job's (room, identity). */
  | "replaced";

/** Work the shell does on a transition. */
export type JobEffect =
  /** Stop whatever the previous state had running (timers, look-ups, calls). */
  | "stop"
  /** Restart the delayed event now, then every 80 % of its timeout. */
  | "startRestarting"
  /** Start periodic presence checks (when configured). */
  | "startPresenceChecks"
  /** Send the delayed event, then end. */
  | "sendLeave"
  /** End the job and forget its persisted record. */
  | "finish"
  /** End the job but keep the record, which now belongs to the newer job. */
  | "finishKeepingRecord";

export interface Transition {
  state: JobState;
  effects: JobEffect[];
}

export const JOB_STATES: readonly JobState[] = [
  "Waiting",
  "Connected",
  "Disconnected",
  "Aborted",
  "Replaced",
];

export const JOB_SIGNALS: readonly JobSignal[] = [
  "participantConnected",
  "participantFound",
  "leftIntentionally",
  "connectionAborted",
  "waitingTimeout",
  "presenceGone",
  "restartFailed",
  "delayedEventNotFound",
  "csApiUnresolvable",
  "replaced",
];

/** A job that can still act: it has not ended. Disconnected is live until its send is done. */
export function isLive(state: JobState): boolean {
  return state === "Waiting" || state === "Connected" ||
    state === "Disconnected";
}

/** The effects of entering each state from a live one. */
const ENTER: Record<JobState, JobEffect[]> = {
  Waiting: [],
  Connected: ["stop", "startRestarting", "startPresenceChecks"],
  Disconnected: ["stop", "sendLeave"],
  Aborted: ["stop", "finish"],
  Replaced: ["stop", "finishKeepingRecord"],
};

/** The next state for (state, signal); an ignored signal keeps the state with no effects. */
export function transition(state: JobState, signal: JobSignal): Transition {
  const next = nextState(state, signal);
  if (next === state) return { state, effects: [] };
  return { state: next, effects: ENTER[next] };
}

/** SPEC 11's table, but for "replaced", which every live state takes. */
const TABLE: Record<JobState, Partial<Record<JobSignal, JobState>>> = {
  Waiting: {
    participantConnected: "Connected",
    participantFound: "Connected",
    connectionAborted: "Aborted",
    waitingTimeout: "Disconnected",
  },
  Connected: {
    leftIntentionally: "Disconnected",
    connectionAborted: "Disconnected",
    presenceGone: "Disconnected",
    restartFailed: "Aborted",
    delayedEventNotFound: "Aborted",
    csApiUnresolvable: "Aborted",
  },
  Disconnected: {},
  Aborted: {},
  Replaced: {},
};

function nextState(state: JobState, signal: JobSignal): JobState {
  if (signal === "replaced") return isLive(state) ? "Replaced" : state;
  return TABLE[state][signal] ?? state;
}
