/** @module The set of running delayed-leave jobs: start, replace, signal, restore, shut down. */

import type { DelayedLeaveRequest } from "../app.ts";
import { badJson, MatrixError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Presence } from "../livekit/room_service.ts";
import { Job, type JobDeps } from "./job.ts";
import { JOB_STATES, type JobSignal, type JobState } from "./machine.ts";
import type { CallOutcome } from "./retry.ts";
import { jobKey, type JobRecord, type JobStore } from "./store.ts";

/** The longest delay a client may hand over: a week. */
export const MAX_DELAY_TIMEOUT_MS = 7 * 24 * 3600_000;
/** The longest delay ID accepted. */
export const MAX_DELAY_ID_LENGTH = 255;

/** How a job ended, for metrics. */
export type JobOutcome = "sent" | "aborted" | "replaced";

export interface JobManagerOptions {
  store: JobStore;
  delayedEvent: JobDeps["delayedEvent"];
  getParticipant(room: string, identity: string): Promise<Presence>;
  sanityIntervalMs: number;
  log: Logger;
  now?: () => number;
  /** Told of each job's end. */
  onOutcome?: (outcome: JobOutcome) => void;
}

/** Runs one job per (room, identity). */
export class JobManager {
  readonly #jobs = new Map<string, Job>();
  readonly #options: JobManagerOptions;
  readonly #now: () => number;
  #shuttingDown = false;

  constructor(options: JobManagerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Starts a job, replacing any job for the same (room, identity). */
  start(request: DelayedLeaveRequest): Promise<void> {
    if (this.#shuttingDown) {
      throw new MatrixError(503, "M_UNKNOWN", "The service is shutting down");
    }
    if (
      request.delayId.length > MAX_DELAY_ID_LENGTH ||
      request.delayTimeoutMs > MAX_DELAY_TIMEOUT_MS
    ) {
      throw badJson(
        `delay_id must be at most ${MAX_DELAY_ID_LENGTH} characters and delay_timeout at most ${MAX_DELAY_TIMEOUT_MS} ms`,
      );
    }
    const record: JobRecord = {
      delayId: request.delayId,
      delayTimeoutMs: request.delayTimeoutMs,
      serverName: request.serverName,
      room: request.room,
      identity: request.identity,
      restartedAt: this.#now(),
    };
    this.#launch(record);
    return this.#options.store.save(record);
  }

  /** Delivers a signal to the job of (room, identity); dropped when there is none. */
  signal(room: string, identity: string, signal: JobSignal): void {
    const job = this.#jobs.get(jobKey(room, identity));
    if (job === undefined) {
      this.#options.log.debug("No job for {signal}", {
        room,
        identity,
        signal,
      });
      return;
    }
    job.signal(signal);
  }

  /**
   * Resumes the stored jobs in Waiting; deletes the expired ones and skips
   * (with a warning) those that cannot be read.
   */
  async restore(): Promise<
    { resumed: number; expired: number; skipped: number }
  > {
    const { entries, invalid } = await this.#options.store.loadAll();
    for (const entry of invalid) {
      this.#options.log.warn(
        "Skipping unreadable stored job {field}: {reason}",
        {
          field: entry.field,
          reason: entry.reason,
        },
      );
    }
    let expired = 0;
    for (const { field, record } of entries) {
      if (record.restartedAt + record.delayTimeoutMs <= this.#now()) {
        expired++;
        await this.#options.store.deleteField(field);
        continue;
      }
      this.#launch(record);
    }
    return {
      resumed: entries.length - expired,
      expired,
      skipped: invalid.length,
    };
  }

  /** Refuses new jobs and stops the running ones without sending; their records stay. */
  shutdown(): void {
    this.#shuttingDown = true;
    for (const job of this.#jobs.values()) job.halt();
    this.#jobs.clear();
  }

  /** The number of running jobs in each state. */
  countByState(): Record<JobState, number> {
    const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<
      JobState,
      number
    >;
    for (const job of this.#jobs.values()) counts[job.state]++;
    return counts;
  }

  get size(): number {
    return this.#jobs.size;
  }

  #launch(record: JobRecord): void {
    const key = jobKey(record.room, record.identity);
    const job = new Job(record, {
      delayedEvent: this.#options.delayedEvent,
      getParticipant: this.#options.getParticipant,
      sanityIntervalMs: this.#options.sanityIntervalMs,
      log: this.#options.log,
      ...(this.#options.now ? { now: this.#options.now } : {}),
      save: (r) => void this.#options.store.save(r),
      ended: (ended, keepRecord) => this.#ended(key, ended, keepRecord),
    });
    const previous = this.#jobs.get(key);
    this.#jobs.set(key, job);
    previous?.signal("replaced");
    job.begin();
  }

  #ended(key: string, job: Job, keepRecord: boolean): void {
    this.#options.onOutcome?.(
      job.state === "Disconnected"
        ? "sent"
        : job.state === "Replaced"
        ? "replaced"
        : "aborted",
    );
    // A replaced job's key already belongs to its successor.
    if (this.#jobs.get(key) !== job) return;
    this.#jobs.delete(key);
    if (!keepRecord) {
      void this.#options.store.delete(job.record.room, job.record.identity);
    }
  }
}

/** Restart/send over the Client-Server API, as a {@link JobDeps.delayedEvent}. */
export type DelayedEventCall = (
  action: "restart" | "send",
  record: JobRecord,
) => Promise<CallOutcome | { kind: "unresolvable" }>;
