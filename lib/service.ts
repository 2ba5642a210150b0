/** @module Builds the service from its parts for a configuration. */

import { createHandler, type Handler } from "./app.ts";
import { CircuitBreakers } from "./circuit_breaker.ts";
import { ClientIpResolver } from "./client_ip.ts";
import { Metrics } from "./metrics.ts";
import { RateLimiter } from "./rate_limit.ts";
import type { Config } from "./config.ts";
import type { Logger } from "./log.ts";
import { delayedEventCall } from "./delayed_leave/delayed_events.ts";
import { JobManager } from "./delayed_leave/jobs.ts";
import type { RedisCluster } from "./delayed_leave/redis_cluster.ts";
import { type JobStore, MemoryJobStore } from "./delayed_leave/store.ts";
import { RoomService } from "./livekit/room_service.ts";
import { TokenSigner } from "./livekit/token.ts";
import { WebhookHandler } from "./livekit/webhook.ts";
import { ClientDiscovery } from "./matrix/client_discovery.ts";
import { nameServerResolver, systemResolver } from "./matrix/dns.ts";
import { HomeserverHttpClient } from "./matrix/http_client.ts";
import { OpenIdVerifier } from "./matrix/openid.ts";
import { ServerDiscovery } from "./matrix/server_discovery.ts";

/** A built service: its handler and what must be stopped at shutdown. */
export interface Service {
  handler: Handler;
  metrics: Metrics;
  jobs: JobManager;
  store: JobStore;
  /** Stops jobs without acting, closes the store and pooled connections. */
  close(): Promise<void>;
}

/** Connects the store, restores jobs and returns the handler. Throws when Redis is unreachable. */
export async function buildService(
  config: Config,
  log: Logger,
): Promise<Service> {
  const resolver = config.dnsServer === undefined
    ? systemResolver()
    : nameServerResolver(config.dnsServer);
  const client = new HomeserverHttpClient({
    resolver,
    skipVerifyTls: config.skipVerifyTls,
    caCerts: config.caCerts,
  });
  const metrics = new Metrics();
  const limits = config.limits;
  const signer = new TokenSigner(config.key, config.secret);
  const rooms = new RoomService({
    livekitUrl: config.livekitUrl,
    signer,
    timeoutMs: limits.sfuTimeoutMs,
    metrics,
  });
  const clientDiscovery = new ClientDiscovery({
    overrides: config.csApiUrlOverrides,
    client,
    timeoutMs: limits.homeserverTimeoutMs,
    metrics,
  });
  const breakers = new CircuitBreakers({
    failureThreshold: limits.breakerFailures,
    cooldownMs: limits.breakerCooldownMs,
  });
  // Set once the jobs exist: Redis may come back empty after an outage.
  let afterReconnect = () => {};
  const store: JobStore = config.redisUrl === undefined
    ? new MemoryJobStore()
    // Loaded only when used: the redis client is ~12 MiB of resident code.
    : await (await import("./delayed_leave/redis_store.ts")).RedisJobStore
      .connect({
        url: config.redisUrl,
        log,
        onReconnect: () => afterReconnect(),
      });
  const cluster: RedisCluster | undefined =
    config.multiReplica && config.redisUrl !== undefined
      ? await (await import("./delayed_leave/redis_cluster.ts")).RedisCluster
        .connect({
          url: config.redisUrl,
          leaseMs: config.replicaLeaseMs,
          log,
        })
      : undefined;
  if (config.redisUrl === undefined) {
    log.warn(
      "LIVEKIT_REDIS_URL is not set: delayed-leave jobs are kept in memory and lost on restart",
    );
  }
  const jobs = new JobManager({
    store,
    delayedEvent: delayedEventCall({
      client,
      discovery: clientDiscovery,
      metrics,
    }),
    getParticipant: (room, identity) => rooms.getParticipant(room, identity),
    sanityIntervalMs: config.sanityCheckIntervalSeconds * 1000,
    log,
    onOutcome: (outcome) => metrics.jobOutcomes.inc({ outcome }),
    maxJobs: limits.maxJobs,
    ...(cluster ? { coordinator: cluster } : {}),
  });
  afterReconnect = () => void jobs.resaveAll();
  metrics.gaugeJobs(() => jobs.countByState());
  metrics.gaugeOpenCircuits(() => breakers.openCount);
  if (cluster === undefined) {
    const restored = await jobs.restore();
    if (restored.resumed + restored.expired + restored.skipped > 0) {
      log.info("Restored delayed-leave jobs", restored);
    }
  } else {
    // Stored jobs are taken over like those of a replica that died.
    jobs.attachCoordinator();
  }
  const webhook = new WebhookHandler({
    apiKey: config.key,
    apiSecret: config.secret,
    signal: (room, identity, signal) => jobs.signal(room, identity, signal),
    log,
  });
  const handler = createHandler({
    config,
    signer,
    verifier: new OpenIdVerifier({
      discovery: new ServerDiscovery({
        resolver,
        client,
        timeoutMs: limits.homeserverTimeoutMs,
        metrics,
        log,
      }),
      client,
      breakers,
      timeoutMs: limits.homeserverTimeoutMs,
      metrics,
    }),
    rooms,
    clientDiscovery,
    jobs,
    webhook,
    readiness: () => store.health(),
    log,
    maxBodyBytes: limits.maxBodyBytes,
    metrics,
    serveMetrics: config.metricsBind === undefined,
    rateLimiter: new RateLimiter({
      perSecond: limits.rateLimitPerSecond,
      burst: limits.rateLimitBurst,
    }),
    clientIp: new ClientIpResolver(limits.trustedProxies),
  });
  return {
    handler,
    metrics,
    jobs,
    store,
    async close() {
      jobs.shutdown();
      await cluster?.close();
      await store.close();
      client.close();
    },
  };
}
