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
import { Backoff, type CallOutcome, sleep } from "./retry.ts";
import type { JobRecord } from "./store.ts";

/** No wait of a job is longer than an hour. */
export const MAX_WAIT_MS = 3600_000;
/** Restart when this share of the delay has passed. */
export const RESTART_AT = 0.8;

/** The outside world a job acts on. */
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
  stateChanged?(state: JobState): void;
  /**
   * Asked before the leave is sent: false when another replica sends (or
   * sent) it, so it goes out once. Throws when it cannot tell yet.
   */
  claimSend?(): Promise<boolean>;
  /** Told once the leave went out (or the homeserver had it already). */
  sendDone?(): void;
  /** Called once when the job ends; `keepRecord` is false when its record should go. */
  ended(job: Job, keepRecord: boolean): void;
  /** Seconds between presence checks while connected; 0 for none. */
  sanityIntervalMs: number;
  log: Logger;
  now?: () => number;
  random?: () => number;
}

/** One delayed-leave job: one participant's delayed leave event. */
export class Job {
  readonly id = crypto.randomUUID().slice(0, 8);
  readonly record: JobRecord;
  #state: JobState = "Waiting";
  /** When the homeserver would send the event by itself, ms since the epoch. */
  #deadline: number;
  /** Aborted by the effect "stop": ends whatever the current state runs. */
  #phase = new AbortController();
  readonly #deps: JobDeps;
  readonly #now: () => number;
  #ended = false;

  constructor(record: JobRecord, deps: JobDeps) {
    this.record = { ...record };
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    this.#deadline = record.restartedAt + record.delayTimeoutMs;
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
    const signal = this.#phase.signal;
    const waitMs = Math.min(MAX_WAIT_MS, this.record.delayTimeoutMs);
    void sleep(waitMs, signal).then((fired) => {
      if (fired) this.signal("waitingTimeout");
    });
    void this.#lookUp(signal, waitMs);
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
    this.#deps.stateChanged?.(state);
    for (const effect of effects) this.#run(effect);
  }

  /** Stops the job without acting and without touching its record (shutdown). */
  halt(): void {
    this.#phase.abort();
    this.#ended = true;
  }

  #run(effect: JobEffect): void {
    switch (effect) {
      case "stop":
        this.#phase.abort();
        this.#phase = new AbortController();
        return;
      case "startRestarting":
        void this.#restartLoop(this.#phase.signal);
        return;
      case "startPresenceChecks":
        if (this.#deps.sanityIntervalMs > 0) {
          void this.#presenceChecks(this.#phase.signal);
        }
        return;
      case "sendLeave":
        void this.#sendLeave(this.#phase.signal);
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
  async #lookUp(signal: AbortSignal, windowMs: number): Promise<void> {
    const until = this.#now() + windowMs;
    const backoff = new Backoff(this.#deps.random);
    while (!signal.aborted && this.#now() < until) {
      try {
        const presence = await this.#deps.getParticipant(
          this.record.room,
          this.record.identity,
        );
        if (signal.aborted) return;
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
      if (wait <= 0 || !(await sleep(wait, signal))) return;
    }
  }

  /** Restart now and after each 80 % of the delay, until stopped or failed. */
  async #restartLoop(signal: AbortSignal): Promise<void> {
    const timeout = this.record.delayTimeoutMs;
    this.#deadline = this.#now() + timeout;
    while (!signal.aborted) {
      const outcome = await this.#retry("restart", signal, this.#deadline);
      if (signal.aborted) return;
      if (outcome === "ok") {
        const now = this.#now();
        this.#deadline = now + timeout;
        this.record.restartedAt = now;
        this.#deps.save({ ...this.record });
        this.#log.debug("Restarted delayed event");
        if (!(await sleep(timeout * RESTART_AT, signal))) return;
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
  async #sendLeave(signal: AbortSignal): Promise<void> {
    const window = Math.min(
      MAX_WAIT_MS,
      Math.max(1_000, this.#deadline - this.#now()),
    );
    const until = this.#now() + window;
    const claim = await this.#claimSend(signal, until);
    if (signal.aborted) return;
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
    const outcome = await this.#retry("send", signal, until);
    if (signal.aborted) return;
    if (outcome === "ok" || outcome === "notFound") {
      this.#deps.sendDone?.();
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
    signal: AbortSignal,
    until: number,
  ): Promise<"mine" | "elsewhere" | "unknown"> {
    if (this.#deps.claimSend === undefined) return "mine";
    const backoff = new Backoff(this.#deps.random);
    while (!signal.aborted && this.#now() < until) {
      try {
        return (await this.#deps.claimSend()) ? "mine" : "elsewhere";
      } catch (err) {
        this.#log.warn("Cannot claim the send yet: {error}", {
          error: err instanceof Error ? err.message : String(err),
        });
      }
      await sleep(
        Math.min(backoff.next(), Math.max(0, until - this.#now())),
        signal,
      );
    }
    return "unknown";
  }

  /** One call retried with backoff (or the server's hint) until `until`. */
  async #retry(
    action: "restart" | "send",
    signal: AbortSignal,
    until: number,
  ): Promise<"ok" | "notFound" | "unresolvable" | "expired"> {
    const backoff = new Backoff(this.#deps.random);
    while (!signal.aborted) {
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
      if (signal.aborted) break;
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
        await sleep(Math.max(0, left), signal);
        return "expired";
      }
      if (!(await sleep(wait, signal))) break;
    }
    return "expired";
  }

  /** Every interval, a confirmed absence means the participant is gone. */
  async #presenceChecks(signal: AbortSignal): Promise<void> {
    while (await sleep(this.#deps.sanityIntervalMs, signal)) {
      try {
        const presence = await this.#deps.getParticipant(
          this.record.room,
          this.record.identity,
        );
        if (signal.aborted) return;
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
