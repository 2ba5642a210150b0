/** @module The set of running delayed-leave jobs: start, replace, signal, restore, shut down. */

import type { DelayedLeaveRequest } from "../app.ts";
import { badJson, MatrixError, retryLater } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Presence } from "../livekit/room_service.ts";
import { Job, type JobDeps } from "./job.ts";
import { JOB_STATES, type JobSignal, type JobState } from "./machine.ts";
import { jobKey, type JobRecord, type JobStore } from "./store.ts";

/** The longest delay a client may hand over: a week. */
export const MAX_DELAY_TIMEOUT_MS = 7 * 24 * 3600_000;
/** The longest delay ID accepted. */
export const MAX_DELAY_ID_LENGTH = 255;

/** How a job ended, for metrics. */
export type JobOutcome = "sent" | "aborted" | "replaced";

/** A job as another replica may take it over. */
export interface OwnedJob {
  field: string;
  record: JobRecord;
  state: JobState;
}

/**
 * Coordination between replicas (multi-replica mode): who owns a job, where
 * signals go, and who sends a leave. Without one, everything is local.
 */
export interface Coordinator {
  /** Starts serving `host`: heartbeats, signal delivery, adoption of orphaned jobs. */
  attach(host: CoordinatorHost): void;
  /** A job started here: this replica owns it from now on. */
  claimNew(field: string): Promise<void>;
  stateChanged(field: string, state: JobState): void;
  /** Sends a signal to whichever replica owns the job; false when Redis knows no such job. */
  route(field: string, signal: JobSignal): Promise<boolean>;
  /** Whether this replica may send the job's leave; throws when it cannot tell yet. */
  claimSend(field: string, delayId: string): Promise<boolean>;
  sendDone(field: string, delayId: string): void;
  /** The job ended here; its coordination keys go. */
  released(field: string): void;
  close(): Promise<void>;
}

/** What a {@link Coordinator} may ask of the local jobs. */
export interface CoordinatorHost {
  /** Applies a signal to the local job of `field`; false when there is none here. */
  apply(field: string, signal: JobSignal): boolean;
  /** Runs a job taken over from a replica that died, in the state it had. */
  adopt(job: OwnedJob, pendingSignal: JobSignal | undefined): void;
  /** Stops the local job of `field` without acting: another replica owns it now. */
  halt(field: string): void;
  /** The jobs running here. */
  owned(): OwnedJob[];
}

export interface JobManagerOptions {
  store: JobStore;
  delayedEvent: JobDeps["delayedEvent"];
  getParticipant(room: string, identity: string): Promise<Presence>;
  sanityIntervalMs: number;
  log: Logger;
  now?: () => number;
  /** Told of each job's end. */
  onOutcome?: (outcome: JobOutcome) => void;
  /** Present in multi-replica mode. */
  coordinator?: Coordinator;
  /** New jobs beyond this many are refused (restored and adopted ones are not). */
  maxJobs?: number;
}

/** Runs one job per (room, identity). */
export class JobManager {
  readonly #jobs = new Map<string, Job>();
  readonly #options: JobManagerOptions;
  readonly #now: () => number;
  #shuttingDown = false;

  /** Shared by every job: a job holds no closures of its own. */
  readonly #jobDeps: JobDeps;

  constructor(options: JobManagerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    const coordinator = options.coordinator;
    this.#jobDeps = {
      delayedEvent: options.delayedEvent,
      getParticipant: options.getParticipant,
      sanityIntervalMs: options.sanityIntervalMs,
      log: options.log,
      ...(options.now ? { now: options.now } : {}),
      save: (r) => void options.store.save(r),
      ended: (job, keepRecord) => this.#ended(job, keepRecord),
      ...(coordinator === undefined ? {} : {
        stateChanged: (job: Job, s: JobState) =>
          coordinator.stateChanged(job.key, s),
        claimSend: (job: Job) =>
          coordinator.claimSend(job.key, job.record.delayId),
        sendDone: (job: Job) =>
          coordinator.sendDone(job.key, job.record.delayId),
      }),
    };
  }

  /** Starts multi-replica coordination; call after {@link restore} (single mode) or instead of it. */
  attachCoordinator(): void {
    const coordinator = this.#options.coordinator;
    if (coordinator === undefined) return;
    coordinator.attach({
      apply: (field, signal) => {
        const job = this.#jobs.get(field);
        job?.signal(signal);
        return job !== undefined;
      },
      adopt: (job, pending) => {
        if (this.#shuttingDown) return;
        if (job.record.restartedAt + job.record.delayTimeoutMs <= this.#now()) {
          this.#options.log.info("Dropping an expired orphaned job", {
            field: job.field,
          });
          coordinator.released(job.field);
          void this.#options.store.deleteField(job.field);
          return;
        }
        const state = job.state === "Disconnected" || job.state === "Connected"
          ? job.state
          : "Waiting";
        this.#options.log.info("Adopted job {field} in {state}", {
          field: job.field,
          state,
        });
        const adopted = this.#launch(job.record, state);
        if (pending !== undefined) adopted.signal(pending);
      },
      halt: (field) => {
        const job = this.#jobs.get(field);
        if (job === undefined) return;
        this.#options.log.info("Job {field} is owned by another replica now", {
          field,
        });
        job.halt();
        this.#jobs.delete(field);
        this.#options.onOutcome?.("replaced");
      },
      owned: () =>
        [...this.#jobs].map(([field, job]) => ({
          field,
          record: { ...job.record },
          state: job.state,
        })),
    });
  }

  /** Writes every running job again (after Redis came back, perhaps empty). */
  async resaveAll(): Promise<void> {
    for (const job of this.#jobs.values()) {
      await this.#options.store.save({ ...job.record });
    }
  }

  /** Starts a job, replacing any job for the same (room, identity). */
  start(request: DelayedLeaveRequest): Promise<void> {
    if (this.#shuttingDown) {
      throw new MatrixError(503, "M_UNKNOWN", "The service is shutting down");
    }
    const key = jobKey(request.room, request.identity);
    const max = this.#options.maxJobs ?? Infinity;
    if (this.#jobs.size >= max && !this.#jobs.has(key)) {
      // Each job holds memory and timers: past the cap the heap would run out.
      throw retryLater(
        503,
        "M_UNKNOWN",
        `The service already keeps ${max} delayed leave events alive; retry later`,
        60_000,
      );
    }
    if (
      request.delayId.length > MAX_DELAY_ID_LENGTH ||
      request.delayTimeoutMs > MAX_DELAY_TIMEOUT_MS
    ) {
      throw badJson(
        `delay_id must be at most ${MAX_DELAY_ID_LENGTH} characters and delay_timeout at most ${MAX_DELAY_TIMEOUT_MS} ms`,
      );
    }
    // Copied: strings JSON.parse cut out of a request body may be slices
    // that keep the whole body alive as long as the job runs.
    const record: JobRecord = structuredClone({
      delayId: request.delayId,
      delayTimeoutMs: request.delayTimeoutMs,
      serverName: request.serverName,
      room: request.room,
      identity: request.identity,
      restartedAt: this.#now(),
    });
    this.#launch(record);
    return this.#persistNew(record);
  }

  /** Ownership first, so no other replica takes the record for an orphan. */
  async #persistNew(record: JobRecord): Promise<void> {
    const field = jobKey(record.room, record.identity);
    try {
      await this.#options.coordinator?.claimNew(field);
    } catch (err) {
      // Re-asserted when Redis is back; the job runs here meanwhile.
      this.#options.log.warn(
        "Cannot record ownership of {field} in Redis: {error}",
        {
          field,
          error: err instanceof Error ? err.message : String(err),
        },
      );
    }
    await this.#options.store.save(record);
  }

  /**
   * Delivers a signal to the job of (room, identity), on whichever replica
   * owns it; dropped when there is none.
   */
  signal(room: string, identity: string, signal: JobSignal): void {
    const field = jobKey(room, identity);
    const coordinator = this.#options.coordinator;
    if (coordinator !== undefined) {
      coordinator.route(field, signal).then(
        (routed) => {
          // A job only here (its records not yet back in Redis) still hears it.
          if (!routed) this.#deliver(room, identity, signal);
        },
        (err) => {
          // Redis is away: the local job, if any, still hears it.
          this.#options.log.warn(
            "Cannot route {signal} through Redis: {error}",
            {
              signal,
              error: err instanceof Error ? err.message : String(err),
            },
          );
          this.#deliver(room, identity, signal);
        },
      );
      return;
    }
    this.#deliver(room, identity, signal);
  }

  /** Applies a signal to the local job of (room, identity), if any. */
  #deliver(room: string, identity: string, signal: JobSignal): void {
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

  #launch(
    record: JobRecord,
    state: "Waiting" | "Connected" | "Disconnected" = "Waiting",
  ): Job {
    const key = jobKey(record.room, record.identity);
    const job = new Job(key, record, this.#jobDeps);
    const previous = this.#jobs.get(key);
    this.#jobs.set(key, job);
    previous?.signal("replaced");
    job.begin(state);
    return job;
  }

  #ended(job: Job, keepRecord: boolean): void {
    const key = job.key;
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
      this.#options.coordinator?.released(key);
    }
  }
}

/** Restart/send over the Client-Server API: a {@link JobDeps.delayedEvent}. */
export type DelayedEventCall = JobDeps["delayedEvent"];
