/**
 * @module Jobs persisted in Redis in the reference's format (SPEC section 12),
 * with plain commands only. Writes that fail while Redis is away are kept and
 * written again once it is back.
 */

import { createClient } from "redis";
import type { Logger } from "../log.ts";
import {
  decodeRecord,
  encodeRecord,
  jobKey,
  type JobRecord,
  type JobStore,
  type LoadedJobs,
} from "./store.ts";

/** The hash holding every job, as in the reference. */
export const JOBS_HASH = "lk-jwt:jobs";
/** How long start-up waits for Redis before giving up. */
export const CONNECT_TIMEOUT_MS = 5_000;

type Client = ReturnType<typeof createClient>;

/**
 * A client that fails commands at once while disconnected (callers keep or
 * retry what failed) and reconnects with backoff up to `maxBackoffMs`.
 *
 * It names itself (`CLIENT SETNAME`, also handy in `CLIENT LIST`): without a
 * handshake command whose failure counts, node-redis 5 takes a connection
 * that a dying server accepted and reset at once for ready, and is then stuck
 * on a dead socket for good.
 */
export function redisClient(url: string, maxBackoffMs = 5_000): Client {
  return createClient({
    url,
    name: "lk-jwt-service",
    disableOfflineQueue: true,
    socket: {
      connectTimeout: CONNECT_TIMEOUT_MS,
      reconnectStrategy: (retries: number) =>
        Math.min(100 * 2 ** retries, maxBackoffMs),
    },
  });
}

export interface RedisStoreOptions {
  url: string;
  log: Logger;
  /** Told when Redis is reachable again after an outage (it may have lost everything). */
  onReconnect?: () => void;
}

/** A {@link JobStore} on Redis. */
export class RedisJobStore implements JobStore {
  readonly #client: Client;
  readonly #log: Logger;
  /** Writes Redis has not taken yet, by field: the value to set, or null to delete. */
  readonly #pending = new Map<string, string | null>();
  #flushing = false;

  private constructor(client: Client, log: Logger) {
    this.#client = client;
    this.#log = log;
  }

  /** Connects and pings; throws when Redis cannot be reached within {@link CONNECT_TIMEOUT_MS}. */
  static async connect(options: RedisStoreOptions): Promise<RedisJobStore> {
    // Commands fail at once while disconnected: the store keeps what failed.
    const client = redisClient(options.url);
    let lastError = "";
    client.on("error", (err: Error) => {
      const message = err.message || err.name;
      if (message !== lastError) {
        options.log.warn("Redis connection error: {error}", { error: message });
      }
      lastError = message;
    });
    const store = new RedisJobStore(client, options.log);
    client.on("ready", () => {
      if (lastError === "") return;
      options.log.info("Redis connection is back");
      lastError = "";
      void store.#flush().then(() => options.onReconnect?.());
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        client.connect().then(() => client.ping()),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(lastError || "timed out")),
            CONNECT_TIMEOUT_MS,
          );
        }),
      ]);
    } catch (err) {
      client.destroy();
      throw new Error(
        `cannot reach Redis at LIVEKIT_REDIS_URL: ${
          err instanceof Error ? err.message : String(err)
        }`,
      );
    } finally {
      clearTimeout(timer);
    }
    return store;
  }

  save(record: JobRecord): Promise<void> {
    return this.#write(
      jobKey(record.room, record.identity),
      encodeRecord(record),
    );
  }

  delete(room: string, identity: string): Promise<void> {
    return this.deleteField(jobKey(room, identity));
  }

  async loadAll(): Promise<LoadedJobs> {
    const stored = await this.#client.hGetAll(JOBS_HASH);
    const loaded: LoadedJobs = { entries: [], invalid: [] };
    for (const [field, value] of Object.entries(stored)) {
      try {
        loaded.entries.push({ field, record: decodeRecord(value) });
      } catch (err) {
        loaded.invalid.push({
          field,
          reason: err instanceof Error ? err.message : String(err),
        });
      }
    }
    return loaded;
  }

  deleteField(field: string): Promise<void> {
    return this.#write(field, null);
  }

  async health(): Promise<string | undefined> {
    try {
      await this.#client.ping();
      return undefined;
    } catch (err) {
      return `Redis unreachable: ${
        err instanceof Error ? err.message : String(err)
      }`;
    }
  }

  /** Writes that have not reached Redis yet. */
  get pendingWrites(): number {
    return this.#pending.size;
  }

  async close(): Promise<void> {
    await this.#flush();
    try {
      await this.#client.close();
    } catch {
      this.#client.destroy();
    }
  }

  async #write(field: string, value: string | null): Promise<void> {
    try {
      await this.#send(field, value);
      this.#pending.delete(field);
    } catch (err) {
      // The newest intent for a field wins when Redis is back.
      this.#pending.set(field, value);
      this.#log.error(
        "Redis write failed; will retry when Redis is back: {error}",
        {
          field,
          error: err instanceof Error ? err.message : String(err),
        },
      );
    }
  }

  async #send(field: string, value: string | null): Promise<void> {
    if (value === null) await this.#client.hDel(JOBS_HASH, field);
    else await this.#client.hSet(JOBS_HASH, field, value);
  }

  async #flush(): Promise<void> {
    if (this.#flushing || this.#pending.size === 0) return;
    this.#flushing = true;
    try {
      for (const [field, value] of [...this.#pending]) {
        try {
          await this.#send(field, value);
          if (this.#pending.get(field) === value) this.#pending.delete(field);
        } catch {
          return;
        }
      }
      this.#log.info("Wrote the jobs Redis missed while it was away");
    } finally {
      this.#flushing = false;
    }
  }
}
