/**
 * @module Multi-replica mode: several service processes share the jobs of
 * `lk-jwt:jobs` through Redis. Each job has one owner replica, recorded in
 * `lk-jwt:owners`; a replica is alive while its heartbeat key
 * `lk-jwt:replica:<id>` exists (it expires after the lease time). Signals go
 * through the pub/sub channel `lk-jwt:signals` to whichever replica owns the
 * job, and each is kept in `lk-jwt:pending` until the owner has applied it:
 * a replica that takes the job over, or an owner whose subscription was
 * down, applies what is left there. A job with no owner at all (written
 * before its owner re-asserted it after a Redis restart, or by the reference)
 * is taken over only once it has stayed so for a lease. A signal that
 * arrives while Redis is away is routed once it is back. A leave is sent only
 * by the replica that wins `lk-jwt:send:<field>:<delay id>`.
 */

import type { createClient } from "redis";
import type { Logger } from "../log.ts";
import type { Coordinator, CoordinatorHost } from "./jobs.ts";
import { JOB_SIGNALS, type JobSignal, type JobState } from "./machine.ts";
import { decodeRecord } from "./store.ts";
import { JOBS_HASH, redisClient } from "./redis_store.ts";

const OWNERS_HASH = "lk-jwt:owners";
const STATES_HASH = "lk-jwt:states";
const PENDING_HASH = "lk-jwt:pending";
const CHANNEL = "lk-jwt:signals";
const replicaKey = (id: string) => `lk-jwt:replica:${id}`;
const sendKey = (field: string, delayId: string) =>
  `lk-jwt:send:${field}:${delayId}`;
/** Signals that could not be routed while Redis was away: at most this many, kept this long. */
const MAX_UNROUTED = 10_000;
const UNROUTED_TTL_MS = 10 * 60_000;
/** Send claims outlive any job (an hour at most) by a margin. */
const SEND_CLAIM_TTL_MS = 2 * 3600_000;

/** Takes a field from a dead (or absent) owner, atomically. */
const TAKE_OVER = `
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if owner == ARGV[2] or (owner == false and ARGV[2] == '') then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0`;

/**
 * Claims the send of a leave: free, or held by a replica that is gone.
 * KEYS[1] = claim key; ARGV[1] = this replica, ARGV[2] = TTL ms, ARGV[3] = replica key prefix.
 */
const CLAIM_SEND = `
local holder = redis.call('GET', KEYS[1])
if holder == 'done' then return 0 end
if holder == false or holder == ARGV[1] or redis.call('EXISTS', ARGV[3] .. holder) == 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`;

/**
 * Publishes a signal for a job Redis knows (stored or owned), keeping it
 * pending until applied; signals for participants without a job leave
 * nothing behind. KEYS = jobs, owners, pending; ARGV = field, signal, message.
 */
const ROUTE = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('PUBLISH', '${CHANNEL}', ARGV[3])
return 1`;

/** Deletes a pending signal once applied, unless a newer one replaced it. */
const CONSUME = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0`;

/** Deletes a field's coordination entries if this replica still owns it. */
const RELEASE = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
end
return 0`;

type Client = ReturnType<typeof createClient>;

export interface RedisClusterOptions {
  url: string;
  /** How long a replica's jobs stay its own after its last heartbeat. */
  leaseMs: number;
  log: Logger;
}

/** A {@link Coordinator} on Redis. */
export class RedisCluster implements Coordinator {
  /** This replica's name: the host name (a pod's name) and a random suffix. */
  readonly id: string;
  readonly #client: Client;
  readonly #subscriber: Client;
  readonly #options: RedisClusterOptions;
  readonly #log: Logger;
  #host: CoordinatorHost | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #scanning = false;
  #closed = false;
  /** Fields seen in `lk-jwt:jobs` with no owner, and since when (ms). */
  #ownerless = new Map<string, number>();
  /** Signals received while Redis was away, oldest first: routed once it is back. */
  #unrouted = new Map<string, { signal: JobSignal; at: number }>();
  /** When the command connection last came back (ms); 0 while it never dropped. */
  #backSince = 0;
  #replaying = false;

  private constructor(
    client: Client,
    subscriber: Client,
    options: RedisClusterOptions,
  ) {
    this.#client = client;
    this.#subscriber = subscriber;
    this.#options = options;
    this.#log = options.log;
    const host = (Deno.env.get("HOSTNAME") ?? "replica").replace(
      /[^\w.-]/g,
      "",
    );
    this.id = `${host}-${crypto.randomUUID().slice(0, 8)}`;
  }

  /** Connects the command and subscriber connections. */
  static async connect(options: RedisClusterOptions): Promise<RedisCluster> {
    // A shorter backoff: handover resumes soon after Redis is back.
    const client = redisClient(options.url, 2_000);
    const subscriber = redisClient(options.url, 2_000);
    let clientDown = false;
    let subscriberDown = false;
    client.on("error", () => {
      clientDown = true;
    });
    subscriber.on("error", () => {
      subscriberDown = true;
    });
    await client.connect();
    await subscriber.connect();
    const cluster = new RedisCluster(client, subscriber, options);
    client.on("ready", () => {
      if (!clientDown) return;
      clientDown = false;
      options.log.info(
        "Redis is back: renewing the heartbeat and re-asserting jobs",
      );
      cluster.#backSince = Date.now();
      void cluster.#recover().then(() => cluster.#replay());
    });
    // Signals published while the subscription was down are still pending.
    subscriber.on("ready", () => {
      if (!subscriberDown) return;
      subscriberDown = false;
      void cluster.#applyPending();
    });
    return cluster;
  }

  attach(host: CoordinatorHost): void {
    this.#host = host;
    void this.#subscriber.subscribe(
      CHANNEL,
      (message) => this.#receive(message),
    );
    const tick = Math.max(200, Math.floor(this.#options.leaseMs / 5));
    void this.#heartbeat();
    this.#timer = setInterval(() => {
      void this.#heartbeat();
      void this.#adoptOrphans();
      void this.#replay();
    }, tick);
    this.#log.info(
      "Multi-replica mode: replica {replica}, lease {leaseMs} ms",
      {
        replica: this.id,
        leaseMs: this.#options.leaseMs,
      },
    );
  }

  async claimNew(field: string): Promise<void> {
    await this.#client.multi()
      .hSet(OWNERS_HASH, field, this.id)
      .hSet(STATES_HASH, field, "Waiting")
      .hDel(PENDING_HASH, field)
      .publish(
        CHANNEL,
        JSON.stringify({ type: "claim", field, owner: this.id }),
      )
      .exec();
  }

  stateChanged(field: string, state: JobState): void {
    this.#client.hSet(STATES_HASH, field, state).catch(() => {
      // Best effort: a replica that takes over resumes in Waiting at worst.
    });
  }

  async route(field: string, signal: JobSignal): Promise<boolean> {
    try {
      return await this.#route(field, signal);
    } catch (err) {
      // The owner may be another replica: routed once Redis is back.
      this.#unrouted.delete(field);
      this.#unrouted.set(field, { signal, at: Date.now() });
      if (this.#unrouted.size > MAX_UNROUTED) {
        this.#unrouted.delete(this.#unrouted.keys().next().value!);
      }
      throw err;
    }
  }

  async #route(field: string, signal: JobSignal): Promise<boolean> {
    const routed = await this.#client.eval(ROUTE, {
      keys: [JOBS_HASH, OWNERS_HASH, PENDING_HASH],
      arguments: [
        field,
        signal,
        JSON.stringify({ type: "signal", field, signal }),
      ],
    });
    return routed === 1;
  }

  /**
   * Routes the signals received while Redis was away. One for a job Redis
   * does not know yet waits until every replica has had time to write its
   * jobs again (two leases); most are for participants without a job.
   */
  async #replay(): Promise<void> {
    if (this.#replaying || this.#unrouted.size === 0) return;
    this.#replaying = true;
    try {
      const now = Date.now();
      const settled = now - this.#backSince > 2 * this.#options.leaseMs;
      for (const [field, { signal, at }] of [...this.#unrouted]) {
        if (now - at > UNROUTED_TTL_MS) {
          this.#unrouted.delete(field);
          continue;
        }
        if (await this.#route(field, signal) || settled) {
          if (this.#unrouted.get(field)?.at === at) {
            this.#unrouted.delete(field);
          }
        }
      }
    } catch {
      // Still away; the next tick tries again.
    } finally {
      this.#replaying = false;
    }
  }

  async claimSend(field: string, delayId: string): Promise<boolean> {
    const won = await this.#client.eval(CLAIM_SEND, {
      keys: [sendKey(field, delayId)],
      arguments: [this.id, String(SEND_CLAIM_TTL_MS), replicaKey("")],
    });
    return won === 1;
  }

  sendDone(field: string, delayId: string): void {
    this.#client.set(sendKey(field, delayId), "done", { PX: SEND_CLAIM_TTL_MS })
      .catch((err) =>
        this.#log.warn("Cannot mark the leave as sent: {error}", {
          error: err instanceof Error ? err.message : String(err),
        })
      );
  }

  released(field: string): void {
    this.#client.eval(RELEASE, {
      keys: [OWNERS_HASH, STATES_HASH, PENDING_HASH],
      arguments: [field, this.id],
    }).catch(() => {
      // Left-over entries are cleaned by whoever finds the job gone.
    });
  }

  /** Stops; the heartbeat goes at once, so other replicas take the jobs over without waiting. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#client.del(replicaKey(this.id)).catch(() => {});
    for (const c of [this.#subscriber, this.#client]) {
      try {
        await c.close();
      } catch {
        c.destroy();
      }
    }
  }

  #receive(message: string): void {
    let data;
    try {
      data = JSON.parse(message);
    } catch {
      return;
    }
    if (typeof data?.field !== "string") return;
    if (data.type === "signal" && JOB_SIGNALS.includes(data.signal)) {
      if (this.#host?.apply(data.field, data.signal)) {
        this.#consume(data.field, data.signal);
      }
    } else if (data.type === "claim" && data.owner !== this.id) {
      this.#host?.halt(data.field);
    }
  }

  async #heartbeat(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#client.set(replicaKey(this.id), String(Date.now()), {
        PX: this.#options.leaseMs,
      });
    } catch {
      // Redis is away; the outage is logged by the store.
    }
  }

  /** Drops a pending signal this replica applied (best effort: applying it twice is harmless). */
  #consume(field: string, signal: JobSignal): void {
    this.#client.eval(CONSUME, {
      keys: [PENDING_HASH],
      arguments: [field, signal],
    }).catch(() => {});
  }

  /** Applies the signals left pending for the jobs here (missed while unsubscribed). */
  async #applyPending(): Promise<void> {
    const fields = this.#host?.owned().map((j) => j.field) ?? [];
    if (fields.length === 0) return;
    try {
      const pending = await this.#client.hmGet(PENDING_HASH, fields);
      fields.forEach((field, i) => {
        const signal = pending[i] as JobSignal | null | undefined;
        if (signal == null || !JOB_SIGNALS.includes(signal)) return;
        this.#log.info("Applying {signal} to {field}, missed while away", {
          signal,
          field,
        });
        if (this.#host?.apply(field, signal)) this.#consume(field, signal);
      });
    } catch {
      // Redis went away again; the next reconnect tries again.
    }
  }

  /** After an outage: heartbeat first, then every local job is ours again unless taken. */
  async #recover(): Promise<void> {
    await this.#heartbeat();
    for (const job of this.#host?.owned() ?? []) {
      try {
        const fresh = await this.#client.hSetNX(
          OWNERS_HASH,
          job.field,
          this.id,
        );
        if (
          !fresh && await this.#client.hGet(OWNERS_HASH, job.field) !== this.id
        ) {
          this.#host?.halt(job.field);
          continue;
        }
        await this.#client.hSet(STATES_HASH, job.field, job.state);
      } catch {
        return;
      }
    }
  }

  /** Takes over the jobs whose owner's heartbeat is gone (or that have no owner). */
  async #adoptOrphans(): Promise<void> {
    if (this.#scanning || this.#closed || this.#host === undefined) return;
    this.#scanning = true;
    try {
      const [fields, owners] = await Promise.all([
        this.#client.hKeys(JOBS_HASH),
        this.#client.hGetAll(OWNERS_HASH),
      ]);
      const mine = new Set(this.#host.owned().map((j) => j.field));
      const alive = new Map<string, boolean>();
      const now = Date.now();
      const ownerless = new Map<string, number>();
      for (const field of fields) {
        if (mine.has(field)) continue;
        const owner = owners[field] ?? "";
        if (owner === this.id) continue;
        if (owner === "") {
          // Its owner may be re-asserting it after a Redis restart.
          const since = this.#ownerless.get(field) ?? now;
          ownerless.set(field, since);
          if (now - since < this.#options.leaseMs) continue;
        } else {
          if (!alive.has(owner)) {
            alive.set(
              owner,
              (await this.#client.exists(replicaKey(owner))) === 1,
            );
          }
          if (alive.get(owner)) continue;
        }
        const taken = await this.#client.eval(TAKE_OVER, {
          keys: [OWNERS_HASH],
          arguments: [field, owner, this.id],
        });
        if (taken !== 1) continue;
        ownerless.delete(field);
        await this.#adopt(field, owner);
      }
      this.#ownerless = ownerless;
    } catch (err) {
      this.#log.debug("Orphan scan failed: {error}", {
        error: err instanceof Error ? err.message : String(err),
      });
    } finally {
      this.#scanning = false;
    }
  }

  async #adopt(field: string, previousOwner: string): Promise<void> {
    const [value, state, pending] = await Promise.all([
      this.#client.hGet(JOBS_HASH, field),
      this.#client.hGet(STATES_HASH, field),
      this.#client.hGet(PENDING_HASH, field),
    ]);
    if (value == null) {
      await this.#client.hDel(OWNERS_HASH, field);
      return;
    }
    let record;
    try {
      record = decodeRecord(value);
    } catch (err) {
      this.#log.warn("Skipping unreadable stored job {field}: {reason}", {
        field,
        reason: err instanceof Error ? err.message : String(err),
      });
      return;
    }
    this.#log.info("Taking over job {field} from {previousOwner}", {
      field,
      previousOwner: previousOwner === "" ? "(none)" : previousOwner,
    });
    // Tell a replica that still thinks it owns the job (it lost Redis for a while) to stop.
    await this.#client.publish(
      CHANNEL,
      JSON.stringify({ type: "claim", field, owner: this.id }),
    );
    const signal = JOB_SIGNALS.includes(pending as JobSignal)
      ? pending as JobSignal
      : undefined;
    this.#host?.adopt(
      { field, record, state: (state ?? "Waiting") as JobState },
      signal,
    );
    if (signal !== undefined) this.#consume(field, signal);
  }
}
