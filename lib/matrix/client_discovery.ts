/**
 * @module Client-Server API discovery for delayed events (SPEC section 9):
 * an override, else `/.well-known/matrix/client`
 * (https://spec.matrix.org/v1.16/client-server-api/#well-known-uris).
 */

import type { HomeserverHttpClient } from "./http_client.ts";
import { TtlCache } from "../ttl_cache.ts";
import { byStatus, type Metrics, type Track, untracked } from "../metrics.ts";

/** How long a discovered base URL is kept. */
export const CLIENT_DISCOVERY_TTL_MS = 4 * 3600_000;
const TIMEOUT_MS = 5_000;

export interface ClientDiscoveryOptions {
  overrides: ReadonlyMap<string, string>;
  client: HomeserverHttpClient;
  now?: () => number;
  timeoutMs?: number;
  metrics?: Metrics;
}

/** Finds the Client-Server API base URL of a homeserver. */
export class ClientDiscovery {
  readonly #overrides: ReadonlyMap<string, string>;
  readonly #client: HomeserverHttpClient;
  readonly #timeoutMs: number;
  readonly #track: Track;
  /** Base URLs by server name. */
  readonly cache: TtlCache<string>;

  constructor(options: ClientDiscoveryOptions) {
    this.#overrides = options.overrides;
    this.#client = options.client;
    this.#timeoutMs = options.timeoutMs ?? TIMEOUT_MS;
    this.#track = options.metrics?.track ?? untracked;
    this.cache = new TtlCache({
      ...(options.now ? { now: options.now } : {}),
      ...(options.metrics
        ? { onLookup: options.metrics.cacheHook("client_api") }
        : {}),
    });
  }

  /** The base URL (no trailing slash), or undefined when it cannot be found. */
  async resolve(serverName: string): Promise<string | undefined> {
    const override = this.#overrides.get(serverName);
    if (override !== undefined) return override;
    const cached = this.cache.get(serverName);
    if (cached !== undefined) return cached.value;
    if (!URL.canParse(`https://${serverName}/`)) return undefined;
    let url: string | undefined;
    try {
      const request = () =>
        this.#client.getFollowingRedirects(
          new URL(`https://${serverName}/.well-known/matrix/client`),
          this.#timeoutMs,
        );
      const response = await this.#track("client_discovery", request, byStatus);
      if (response.status !== 200) return undefined;
      const base = JSON.parse(response.body)?.["m.homeserver"]?.base_url;
      if (typeof base !== "string" || !/^https?:\/\//.test(base)) {
        return undefined;
      }
      if (!URL.canParse(base)) return undefined;
      url = base.replace(/\/+$/, "");
    } catch {
      return undefined;
    }
    this.cache.set(serverName, url, CLIENT_DISCOVERY_TTL_MS);
    return url;
  }
}
