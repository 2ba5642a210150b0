/**
 * @module Persisted delayed-leave jobs: the record, its encoding in the
 * reference's Redis format (SPEC section 12), and the in-memory store.
 */

import { goJsonStringArray } from "../livekit/token.ts";

/** What is persisted of a job. */
export interface JobRecord {
  delayId: string;
  delayTimeoutMs: number;
  serverName: string;
  room: string;
  identity: string;
  /** When the delayed event was last restarted (or the job started), ms since the epoch. */
  restartedAt: number;
}

/** Where jobs are kept across restarts of the service. */
export interface JobStore {
  save(record: JobRecord): Promise<void>;
  delete(room: string, identity: string): Promise<void>;
  /** Deletes an entry by its stored field, as {@link loadAll} lists it. */
  deleteField(field: string): Promise<void>;
  /** Every stored job; entries that cannot be read are listed by field with the reason. */
  loadAll(): Promise<LoadedJobs>;
  /** Undefined when the store can take writes, else why not. */
  health(): Promise<string | undefined>;
  close(): Promise<void>;
}

export interface LoadedJobs {
  entries: { field: string; record: JobRecord }[];
  invalid: InvalidEntry[];
}

export interface InvalidEntry {
  field: string;
  reason: string;
}

/** The key of a job: compact JSON `["<room>","<identity>"]`, the reference's hash field. */
export function jobKey(room: string, identity: string): string {
  return goJsonStringArray([room, identity]);
}

/** Encodes a record as the reference stores it: Go field names, timeout in nanoseconds. */
export function encodeRecord(record: JobRecord): string {
  return JSON.stringify({
    Params: {
      DelayId: record.delayId,
      DelayTimeout: record.delayTimeoutMs * 1_000_000,
      ServerName: record.serverName,
      LiveKitRoom: record.room,
      LiveKitIdentity: record.identity,
    },
    RestartedAt: new Date(record.restartedAt).toISOString(),
  });
}

/** Decodes a stored value; throws with a reason when it is not one. */
export function decodeRecord(value: string): JobRecord {
  const data = JSON.parse(value);
  const p = data?.Params;
  if (typeof p !== "object" || p === null) throw new Error("no Params");
  for (
    const name of ["DelayId", "ServerName", "LiveKitRoom", "LiveKitIdentity"]
  ) {
    if (typeof p[name] !== "string" || p[name] === "") {
      throw new Error(`Params.${name} is not a non-empty string`);
    }
  }
  if (!Number.isSafeInteger(p.DelayTimeout) || p.DelayTimeout <= 0) {
    throw new Error("Params.DelayTimeout is not a positive integer");
  }
  const restartedAt = parseRfc3339(data.RestartedAt);
  return {
    delayId: p.DelayId,
    delayTimeoutMs: p.DelayTimeout / 1_000_000,
    serverName: p.ServerName,
    room: p.LiveKitRoom,
    identity: p.LiveKitIdentity,
    restartedAt,
  };
}

/**
 * Parses RFC 3339 with any number of fractional digits (Go writes up to
 * nine) and a `Z` or `±hh:mm` offset, to ms since the epoch.
 */
export function parseRfc3339(text: unknown): number {
  const match = typeof text === "string"
    ? /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/i
      .exec(text)
    : null;
  if (match === null) throw new Error("RestartedAt is not an RFC 3339 time");
  const ms = Date.parse(`${match[1]}${match[3]!.toUpperCase()}`);
  if (Number.isNaN(ms)) throw new Error("RestartedAt is not a valid time");
  const fraction = Number(`0.${match[2] ?? "0"}`);
  return ms + Math.floor(fraction * 1000);
}

/** Keeps records in this process only: jobs do not survive a restart. */
export class MemoryJobStore implements JobStore {
  readonly #records = new Map<string, JobRecord>();

  save(record: JobRecord): Promise<void> {
    this.#records.set(jobKey(record.room, record.identity), { ...record });
    return Promise.resolve();
  }

  delete(room: string, identity: string): Promise<void> {
    return this.deleteField(jobKey(room, identity));
  }

  deleteField(field: string): Promise<void> {
    this.#records.delete(field);
    return Promise.resolve();
  }

  loadAll(): Promise<LoadedJobs> {
    const entries = [...this.#records].map(([field, record]) => ({
      field,
      record: { ...record },
    }));
    return Promise.resolve({ entries, invalid: [] });
  }

  health(): Promise<string | undefined> {
    return Promise.resolve(undefined);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
