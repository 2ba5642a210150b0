/**
 * @module Prometheus metrics on prom-client. Labels take values from fixed
 * sets only (routes, target kinds, outcomes, states): never a user ID, a
 * token or a room.
 */

import process from "node:process";
import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** The routes counted by name; any other path counts as "other". */
export const ROUTES = [
  "/get_token",
  "/sfu/get",
  "/delegate_delayed_leave",
  "/sfu_webhook",
  "/healthz",
  "/readyz",
  "/metrics",
] as const;

/** The kinds of outgoing call. */
export type TargetKind =
  | "userinfo"
  | "server_discovery"
  | "client_discovery"
  | "twirp_create_room"
  | "twirp_get_participant"
  | "delayed_event_restart"
  | "delayed_event_send";

/** How an outgoing call ended. */
export type CallResult = "ok" | "http_error" | "transport_error";

/** Times a call and counts its outcome; {@link Metrics.track}, or nothing. */
export type Track = <T>(
  target: TargetKind,
  call: () => Promise<T>,
  outcome?: (value: T) => CallResult,
  errorOutcome?: (err: unknown) => CallResult,
) => Promise<T>;

/** A {@link Track} that only runs the call. */
export const untracked: Track = (_target, call) => call();

/** `http_error` for 5xx answers, else `ok`. */
export function byStatus(response: { status: number }): CallResult {
  return response.status >= 500 ? "http_error" : "ok";
}

/** The label of a request path. */
export function routeLabel(path: string): string {
  return (ROUTES as readonly string[]).includes(path) ? path : "other";
}

/** The service's metrics, in a registry of their own. */
export class Metrics {
  readonly registry = new Registry();
  readonly requests: Counter<"route" | "status">;
  readonly requestDuration: Histogram<"route">;
  readonly outgoing: Counter<"target" | "outcome">;
  readonly outgoingDuration: Histogram<"target">;
  readonly jobOutcomes: Counter<"outcome">;
  readonly rateLimited: Counter<"route">;
  readonly breakerRejections: Counter;
  readonly cacheLookups: Counter<"cache" | "result">;

  constructor() {
    const registers = [this.registry];
    registerProcessMetrics(this.registry);
    this.requests = new Counter({
      name: "lk_jwt_http_requests_total",
      help: "HTTP requests answered, by route and status code.",
      labelNames: ["route", "status"],
      registers,
    });
    this.requestDuration = new Histogram({
      name: "lk_jwt_http_request_duration_seconds",
      help: "Time to answer an HTTP request, by route.",
      labelNames: ["route"],
      buckets: [
        0.001,
        0.0025,
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1,
        2.5,
        5,
        10,
      ],
      registers,
    });
    this.outgoing = new Counter({
      name: "lk_jwt_outgoing_requests_total",
      help: "Calls to homeservers and the SFU, by target kind and outcome.",
      labelNames: ["target", "outcome"],
      registers,
    });
    this.outgoingDuration = new Histogram({
      name: "lk_jwt_outgoing_request_duration_seconds",
      help: "Time of calls to homeservers and the SFU, by target kind.",
      labelNames: ["target"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.jobOutcomes = new Counter({
      name: "lk_jwt_delayed_leave_job_outcomes_total",
      help: "Delayed-leave jobs ended, by outcome (sent, aborted, replaced).",
      labelNames: ["outcome"],
      registers,
    });
    this.rateLimited = new Counter({
      name: "lk_jwt_rate_limited_requests_total",
      help: "Requests refused by the per-client rate limit, by route.",
      labelNames: ["route"],
      registers,
    });
    this.cacheLookups = new Counter({
      name: "lk_jwt_cache_lookups_total",
      help:
        "Cache look-ups, by cache (well_known_server, srv, client_api) and result (hit, miss).",
      labelNames: ["cache", "result"],
      registers,
    });
    this.breakerRejections = new Counter({
      name: "lk_jwt_circuit_breaker_rejections_total",
      help:
        "Requests answered at once because their homeserver's circuit is open.",
      registers,
    });
  }

  /** A look-up hook for the cache named `cache` (see `TtlCache`). */
  cacheHook(cache: string): (hit: boolean) => void {
    return (hit) =>
      this.cacheLookups.inc({ cache, result: hit ? "hit" : "miss" });
  }

  /** Times `call`, counting its outcome under `target` (a property, so it can be passed on). */
  readonly track: Track = async (
    target,
    call,
    outcome = () => "ok",
    errorOutcome = () => "transport_error",
  ) => {
    const end = this.outgoingDuration.startTimer({ target });
    try {
      const value = await call();
      this.outgoing.inc({ target, outcome: outcome(value) });
      return value;
    } catch (err) {
      this.outgoing.inc({ target, outcome: errorOutcome(err) });
      throw err;
    } finally {
      end();
    }
  };

  /** Reports job counts by state at each scrape. */
  gaugeJobs(countByState: () => Record<string, number>): void {
    new Gauge({
      name: "lk_jwt_delayed_leave_jobs",
      help: "Delayed-leave jobs running, by state.",
      labelNames: ["state"],
      registers: [this.registry],
      collect() {
        for (const [state, count] of Object.entries(countByState())) {
          this.set({ state }, count);
        }
      },
    });
  }

  /** Reports how many homeserver circuits are open at each scrape. */
  gaugeOpenCircuits(count: () => number): void {
    new Gauge({
      name: "lk_jwt_circuit_breakers_open",
      help: "Homeservers whose circuit breaker is open now.",
      registers: [this.registry],
      collect() {
        this.set(count());
      },
    });
  }

  /** The exposition text. */
  async render(): Promise<Response> {
    return new Response(await this.registry.metrics(), {
      headers: { "Content-Type": this.registry.contentType },
    });
  }
}

/**
 * Process memory and CPU under the usual names. prom-client's own collectors
 * read /proc/self, which the service's permission set does not open, so
 * these come from the runtime instead.
 */
function registerProcessMetrics(registry: Registry): void {
  const registers = [registry];
  const memory = (
    name: string,
    help: string,
    read: (m: Deno.MemoryUsage) => number,
  ) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read(Deno.memoryUsage()));
      },
    });
  memory(
    "process_resident_memory_bytes",
    "Resident memory size in bytes.",
    (m) => m.rss,
  );
  memory(
    "nodejs_heap_size_total_bytes",
    "V8 heap size in bytes.",
    (m) => m.heapTotal,
  );
  memory(
    "nodejs_heap_size_used_bytes",
    "V8 heap used in bytes.",
    (m) => m.heapUsed,
  );
  memory(
    "nodejs_external_memory_bytes",
    "Memory outside the V8 heap in bytes.",
    (m) => m.external,
  );
  let last = process.cpuUsage();
  const cpu = new Counter({
    name: "process_cpu_seconds_total",
    help: "User and system CPU time spent in seconds.",
    labelNames: ["mode"],
    registers,
    collect() {
      const now = process.cpuUsage();
      this.inc({ mode: "user" }, (now.user - last.user) / 1e6);
      this.inc({ mode: "system" }, (now.system - last.system) / 1e6);
      last = now;
    },
  });
  cpu.inc({ mode: "user" }, last.user / 1e6);
  cpu.inc({ mode: "system" }, last.system / 1e6);
  new Gauge({
    name: "process_start_time_seconds",
    help: "Start time of the process since the Unix epoch in seconds.",
    registers,
  }).set(Math.round(Date.now() / 1000 - performance.now() / 1000));
}
