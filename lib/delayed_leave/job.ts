/**
 * @module The shell around the job state machine: timers, restart and send
 * calls with retries, presence look-ups (SPEC section 11).
 */

import type { Logger } from "../log.ts";
import type { Presence } from "../livekit/room_service.ts";
import {
  isLive,
  type JobEffect,
  type JobSignal,
  type JobState,
  transition,
} from "./machine.ts";
import { Backoff, type CallOutcome } from "./retry.ts";
import type { JobRecord } from "./store.ts";
import { Phase, sleep } from "./timers.ts";

/** No wait of a job is longer than an hour. */
export const MAX_WAIT_MS = 3600_000;
/** Restart when this share of the delay has passed. */
export const RESTART_AT = 0.8;

/**
 * The outside world a job acts on: one object serves every job (callbacks
 * get the job), so a job holds no closures of its own.
 */
export interface JobDeps {
  /** Restarts or sends the delayed event once; "unresolvable" when the CS API cannot be found. */
  delayedEvent(
    action: "restart" | "send",
    record: JobRecord,
  ): Promise<CallOutcome | { kind: "unresolvable" }>;
  getParticipant(room: string, identity: string): Promise<Presence>;
  /** Persists the record (on each successful restart). */
  save(record: JobRecord): void;
  /** Told of each state the job enters. */
  stateChanged?(job: Job, state: JobState): void;
  /**
   * Asked before the leave is sent: false when another replica sends (or
   * sent) it, so it goes out once. Throws when it cannot tell yet.
   */
  claimSend?(job: Job): Promise<boolean>;
  /** Told once the leave went out (or the homeserver had it already). */
  sendDone?(job: Job): void;
  /** Called once when the job ends; `keepRecord` is false when its record should go. */
  ended(job: Job, keepRecord: boolean): void;
  /** Milliseconds between presence checks while connected; 0 for none. */
  sanityIntervalMs: number;
  log: Logger;
  now?: () => number;
  random?: () => number;
}

/** One delayed-leave job: one participant's delayed leave event. */
export class Job {
  readonly id = crypto.randomUUID().slice(0, 8);
  /** The key of its room and identity, as in the store. */
  readonly key: string;
  readonly record: JobRecord;
  #state: JobState = "Waiting";
  /** When the homeserver would send the event by itself, ms since the epoch. */
  #deadline: number;
  /** Stopped by the effect "stop": ends whatever the current state runs. */
  #phase = new Phase();
  readonly #deps: JobDeps;
  #ended = false;

  constructor(key: string, record: JobRecord, deps: JobDeps) {
    this.key = key;
    this.record = { ...record };
    this.#deps = deps;
    this.#deadline = record.restartedAt + record.delayTimeoutMs;
  }

  #now(): number {
    return this.#deps.now?.() ?? Date.now();
  }

  /**
   * Made per log call rather than kept: a child logger held by every job
   * costs ~0.6 KiB each, and a job logs only on transitions and failures.
   */
  get #log(): Logger {
    return this.#deps.log.with({
      job: this.id,
      room: this.record.room,
      identity: this.record.identity,
    });
  }

  get state(): JobState {
    return this.#state;
  }

  /**
   * Starts the job: in Waiting (the waiting timer and the presence look-up),
   * or, for a job taken over from another replica, in the state it had there.
   */
  begin(state: "Waiting" | "Connected" | "Disconnected" = "Waiting"): void {
    if (state !== "Waiting") {
      this.#state = state;
      const effects = state === "Connected"
        ? ["startRestarting", "startPresenceChecks"] as const
        : ["sendLeave"] as const;
      for (const effect of effects) this.#run(effect);
      return;
    }
    const phase = this.#phase;
    const waitMs = Math.min(MAX_WAIT_MS, this.record.delayTimeoutMs);
    void sleep(waitMs, phase).then((fired) => {
      if (fired) this.signal("waitingTimeout");
    });
    void this.#lookUp(phase, waitMs);
  }

  /** Applies a signal; ignored signals change nothing. */
  signal(signal: JobSignal): void {
    const from = this.#state;
    const { state, effects } = transition(from, signal);
    if (state === from) {
      this.#log.debug("Job ignored {signal} in {state}", { signal, state });
      return;
    }
    this.#state = state;
    this.#log.info("Job {from} -> {to} on {signal}", {
      from,
      to: state,
      signal,
    });
    this.#deps.stateChanged?.(this, state);
    for (const effect of effects) this.#run(effect);
  }

  /** Stops the job without acting and without touching its record (shutdown). */
  halt(): void {
    this.#phase.stop();
    this.#ended = true;
  }

  #run(effect: JobEffect): void {
    switch (effect) {
      case "stop":
        this.#phase.stop();
        this.#phase = new Phase();
        return;
      case "startRestarting":
        void this.#restartLoop(this.#phase);
        return;
      case "startPresenceChecks":
        if (this.#deps.sanityIntervalMs > 0) {
          void this.#presenceChecks(this.#phase);
        }
        return;
      case "sendLeave":
        void this.#sendLeave(this.#phase);
        return;
      case "finish":
        this.#end(false);
        return;
      case "finishKeepingRecord":
        this.#end(true);
        return;
    }
  }

  #end(keepRecord: boolean): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#deps.ended(this, keepRecord);
  }

  /** GetParticipant with backoff until found or `windowMs` has passed. */
  async #lookUp(phase: Phase, windowMs: number): Promise<void> {
    const until = this.#now() + windowMs;
    const backoff = new Backoff(this.#deps.random);
    while (!phase.stopped && this.#now() < until) {
      try {
        const presence = await this.#deps.getParticipant(
          this.record.room,
          this.record.identity,
        );
        if (phase.stopped) return;
        if (presence === "present") {
          this.signal("participantFound");
          return;
        }
      } catch (err) {
        this.#log.debug("Presence look-up failed: {error}", {
          error: err instanceof Error ? err.message : String(err),
        });
      }
      const wait = Math.min(backoff.next(), until - this.#now());
      if (wait <= 0 || !(await sleep(wait, phase))) return;
    }
  }

  /** Restart now and after each 80 % of the delay, until stopped or failed. */
  async #restartLoop(phase: Phase): Promise<void> {
    const timeout = this.record.delayTimeoutMs;
    this.#deadline = this.#now() + timeout;
    while (!phase.stopped) {
      const outcome = await this.#retry("restart", phase, this.#deadline);
      if (phase.stopped) return;
      if (outcome === "ok") {
        const now = this.#now();
        this.#deadline = now + timeout;
        this.record.restartedAt = now;
        this.#deps.save({ ...this.record });
        this.#log.debug("Restarted delayed event");
        if (!(await sleep(timeout * RESTART_AT, phase))) return;
      } else {
        if (outcome === "notFound") {
          this.#log.warn(
            "The homeserver does not know the delayed event (404 on restart): it was sent or cancelled, or the homeserver lacks MSC4140's unauthenticated restart (Synapse before 1.143)",
          );
        }
        this.signal(
          outcome === "notFound"
            ? "delayedEventNotFound"
            : outcome === "unresolvable"
            ? "csApiUnresolvable"
            : "restartFailed",
        );
        return;
      }
    }
  }

  /** Sends the leave, retrying within min(1 h, max(1 s, deadline − now)), then ends. */
  async #sendLeave(phase: Phase): Promise<void> {
    const window = Math.min(
      MAX_WAIT_MS,
      Math.max(1_000, this.#deadline - this.#now()),
    );
    const until = this.#now() + window;
    const claim = await this.#claimSend(phase, until);
    if (phase.stopped) return;
    if (claim === "elsewhere") {
      this.#log.info("Another replica sends this delayed leave event");
      this.#end(true);
      return;
    }
    if (claim === "unknown") {
      this.#log.error(
        "Gave up sending delayed leave event: no claim before the deadline",
      );
      this.#end(false);
      return;
    }
    const outcome = await this.#retry("send", phase, until);
    if (phase.stopped) return;
    if (outcome === "ok" || outcome === "notFound") {
      this.#deps.sendDone?.(this);
      this.#log.info(
        outcome === "ok"
          ? "Sent delayed leave event"
          : "Delayed leave event was already sent or cancelled",
      );
    } else {
      this.#log.error("Gave up sending delayed leave event: {reason}", {
        reason: outcome,
      });
    }
    this.#end(false);
  }

  /** Asks for the right to send, retrying (while Redis is away) until `until`. */
  async #claimSend(
    phase: Phase,
    until: number,
  ): Promise<"mine" | "elsewhere" | "unknown"> {
    if (this.#deps.claimSend === undefined) return "mine";
    const backoff = new Backoff(this.#deps.random);
    while (!phase.stopped && this.#now() < until) {
      try {
        return (await this.#deps.claimSend(this)) ? "mine" : "elsewhere";
      } catch (err) {
        this.#log.warn("Cannot claim the send yet: {error}", {
          error: err instanceof Error ? err.message : String(err),
        });
      }
      await sleep(
        Math.min(backoff.next(), Math.max(0, until - this.#now())),
        phase,
      );
    }
    return "unknown";
  }

  /** One call retried with backoff (or the server's hint) until `until`. */
  async #retry(
    action: "restart" | "send",
    phase: Phase,
    until: number,
  ): Promise<"ok" | "notFound" | "unresolvable" | "expired"> {
    const backoff = new Backoff(this.#deps.random);
    while (!phase.stopped) {
      if (this.#now() >= until) return "expired";
      let outcome;
      try {
        outcome = await this.#deps.delayedEvent(action, this.record);
      } catch (err) {
        outcome = {
          kind: "retry" as const,
          reason: err instanceof Error ? err.message : String(err),
        };
      }
      if (phase.stopped) break;
      if (outcome.kind !== "retry") return outcome.kind;
      const wait = outcome.afterMs ?? backoff.next();
      this.#log.warn(
        "Delayed event {action} failed ({reason}); retrying in {waitMs} ms",
        {
          action,
          reason: outcome.reason,
          waitMs: Math.round(wait),
        },
      );
      const left = until - this.#now();
      if (wait >= left) {
        await sleep(Math.max(0, left), phase);
        return "expired";
      }
      if (!(await sleep(wait, phase))) break;
    }
    return "expired";
  }

  /** Every interval, a confirmed absence means the participant is gone. */
  async #presenceChecks(phase: Phase): Promise<void> {
    while (await sleep(this.#deps.sanityIntervalMs, phase)) {
      try {
        const presence = await this.#deps.getParticipant(
          this.record.room,
          this.record.identity,
        );
        if (phase.stopped) return;
        if (presence === "absent") {
          this.signal("presenceGone");
          return;
        }
      } catch {
        // Transport errors say nothing about the participant.
      }
    }
  }

  /** Whether the job can still act. */
  get live(): boolean {
    return !this.#ended && isLive(this.#state);
  }
}
