/** @module Builds the service from its parts for a configuration. */

import { createHandler } from "./app.ts";
import type { Config } from "./config.ts";
import type { Logger } from "./log.ts";
import { delayedEventCall } from "./delayed_leave/delayed_events.ts";
import { JobManager } from "./delayed_leave/jobs.ts";
import { RedisJobStore } from "./delayed_leave/redis_store.ts";
import { type JobStore, MemoryJobStore } from "./delayed_leave/store.ts";
import { RoomService } from "./livekit/room_service.ts";
import { TokenSigner } from "./livekit/token.ts";
import { WebhookHandler } from "./livekit/webhook.ts";
import { ClientDiscovery } from "./matrix/client_discovery.ts";
import { nameServerResolver, systemResolver } from "./matrix/dns.ts";
import { HomeserverHttpClient } from "./matrix/http_client.ts";
import { OpenIdVerifier } from "./matrix/openid.ts";
import { ServerDiscovery } from "./matrix/server_discovery.ts";

/** Largest request body the routes read. */
export const MAX_BODY_BYTES = 64 * 1024;

/** A built service: its handler and what must be stopped at shutdown. */
export interface Service {
  handler: (request: Request) => Promise<Response>;
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
  const signer = new TokenSigner(config.key, config.secret);
  const rooms = new RoomService({ livekitUrl: config.livekitUrl, signer });
  const clientDiscovery = new ClientDiscovery({
    overrides: config.csApiUrlOverrides,
    client,
  });
  const store: JobStore = config.redisUrl === undefined
    ? new MemoryJobStore()
    : await RedisJobStore.connect({ url: config.redisUrl, log });
  if (config.redisUrl === undefined) {
    log.warn(
      "LIVEKIT_REDIS_URL is not set: delayed-leave jobs are kept in memory and lost on restart",
    );
  }
  const jobs = new JobManager({
    store,
    delayedEvent: delayedEventCall({ client, discovery: clientDiscovery }),
    getParticipant: (room, identity) => rooms.getParticipant(room, identity),
    sanityIntervalMs: config.sanityCheckIntervalSeconds * 1000,
    log,
  });
  const restored = await jobs.restore();
  if (restored.resumed + restored.expired + restored.skipped > 0) {
    log.info("Restored delayed-leave jobs", restored);
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
      discovery: new ServerDiscovery({ resolver, client }),
      client,
    }),
    rooms,
    clientDiscovery,
    jobs,
    webhook,
    readiness: () => store.health(),
    log,
    maxBodyBytes: MAX_BODY_BYTES,
  });
  return {
    handler,
    jobs,
    store,
    async close() {
      jobs.shutdown();
      await store.close();
      client.close();
    },
  };
}
