/**
 * @module Matrix server name resolution, per the Server-Server API's
 * "Resolving server names" (https://spec.matrix.org/v1.16/server-server-api/#resolving-server-names).
 */

import { orderSrv, type Resolver } from "./dns.ts";
import type { HomeserverHttpClient } from "./http_client.ts";
import { TtlCache } from "../ttl_cache.ts";
import type { Logger } from "../log.ts";
import { byStatus, type Metrics, type Track, untracked } from "../metrics.ts";

/** Where and how to reach a homeserver's federation API. */
export interface FederationTarget {
  /** Host (name or IP) to connect to. */
  host: string;
  port: number;
  /** The Host header to send. */
  hostHeader: string;
  /** The name (or IP) the certificate must be valid for. */
  tlsName: string;
}

/** A server name split into host and optional port, per the spec's grammar. */
export interface ServerName {
  host: string;
  port: number | undefined;
  isIpLiteral: boolean;
}

const DEFAULT_PORT = 8448;
/** Well-known answers without caching headers live 24 h (the spec's suggestion). */
export const WELL_KNOWN_DEFAULT_TTL_MS = 24 * 3600_000;
/** No well-known answer is kept longer than 48 h, whatever the headers say. */
export const WELL_KNOWN_MAX_TTL_MS = 48 * 3600_000;
/** A failed well-known look-up is remembered this long (the spec allows up to 1 h). */
export const WELL_KNOWN_ERROR_TTL_MS = 10 * 60_000;
/** SRV answers are kept this long: Deno's DNS client does not report TTLs. */
export const SRV_TTL_MS = 5 * 60_000;
const WELL_KNOWN_TIMEOUT_MS = 5_000;

/**
 * Parses `host[:port]` where host is a DNS name, an IPv4 address or a
 * bracketed IPv6 address. Returns undefined when the text is not a server name.
 */
export function parseServerName(text: string): ServerName | undefined {
  const match =
    /^(?:\[([0-9A-Fa-f:.]{2,45})\]|([0-9A-Za-z.-]{1,255}))(?::(\d{1,5}))?$/
      .exec(text);
  if (match === null) return undefined;
  const port = match[3] === undefined ? undefined : Number(match[3]);
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  if (match[1] !== undefined) {
    return { host: match[1], port, isIpLiteral: true };
  }
  const host = match[2]!;
  return {
    host,
    port,
    isIpLiteral: /^\d{1,3}(\.\d{1,3}){3}$/.test(host),
  };
}

export interface ServerDiscoveryOptions {
  resolver: Resolver;
  client: HomeserverHttpClient;
  now?: () => number;
  /** Time allowed for a well-known request. */
  timeoutMs?: number;
  metrics?: Metrics;
  log?: Logger;
}

/** Resolves server names to federation targets, caching well-known and SRV answers. */
export class ServerDiscovery {
  readonly #resolver: Resolver;
  readonly #client: HomeserverHttpClient;
  readonly #timeoutMs: number;
  readonly #track: Track;
  readonly #log: Logger | undefined;
  /** `m.server` by host; undefined remembers "no delegation". */
  readonly wellKnown: TtlCache<string | undefined>;
  /** The SRV-derived target by host; undefined remembers "no SRV records". */
  readonly srv: TtlCache<FederationTarget | undefined>;

  constructor(options: ServerDiscoveryOptions) {
    this.#resolver = options.resolver;
    this.#client = options.client;
    this.#timeoutMs = options.timeoutMs ?? WELL_KNOWN_TIMEOUT_MS;
    this.#track = options.metrics?.track ?? untracked;
    this.#log = options.log;
    const now = options.now ?? Date.now;
    this.wellKnown = new TtlCache({
      now,
      ...(options.metrics
        ? { onLookup: options.metrics.cacheHook("well_known_server") }
        : {}),
    });
    this.srv = new TtlCache({
      now,
      ...(options.metrics
        ? { onLookup: options.metrics.cacheHook("srv") }
        : {}),
    });
  }

  /** Resolves a server name; throws when it is not a valid one. */
  async resolve(serverName: string): Promise<FederationTarget> {
    const name = parseServerName(serverName);
    if (name === undefined) {
      throw new Error(`not a valid server name: ${JSON.stringify(serverName)}`);
    }
    // Steps 1 and 2: an IP literal, or a host with an explicit port, is used as is.
    if (name.isIpLiteral || name.port !== undefined) {
      return direct(name, serverName);
    }
    // Step 3: delegation through /.well-known/matrix/server.
    const delegated = await this.#delegation(name.host);
    if (delegated !== undefined) {
      const target = parseServerName(delegated)!;
      if (target.isIpLiteral || target.port !== undefined) {
        return direct(target, delegated);
      }
      return await this.#srvOrDefault(target.host);
    }
    // Steps 4 to 6: SRV records, else port 8448.
    return await this.#srvOrDefault(name.host);
  }

  /** The `m.server` of a host's well-known document, cached per its Cache-Control. */
  async #delegation(host: string): Promise<string | undefined> {
    const cached = this.wellKnown.get(host);
    if (cached !== undefined) return cached.value;
    let value: string | undefined;
    let ttl = WELL_KNOWN_ERROR_TTL_MS;
    try {
      const request = () =>
        this.#client.getFollowingRedirects(
          new URL(`https://${host}/.well-known/matrix/server`),
          this.#timeoutMs,
        );
      const response = await this.#track("server_discovery", request, byStatus);
      if (response.status === 200) {
        const server = JSON.parse(response.body)?.["m.server"];
        if (typeof server === "string" && parseServerName(server)) {
          value = server;
          ttl = cacheLifetime(response.headers.get("cache-control"));
        }
      }
    } catch (err) {
      // Unreachable or not JSON: the spec says to go on without delegation.
      this.#log?.debug(
        "No usable /.well-known/matrix/server for {host}: {error}",
        {
          host,
          error: err instanceof Error ? err.message : String(err),
        },
      );
    }
    this.wellKnown.set(host, value, ttl);
    return value;
  }

  /** Steps 3.3–3.5 and 4–6: `_matrix-fed._tcp`, then `_matrix._tcp`, then port 8448. */
  async #srvOrDefault(host: string): Promise<FederationTarget> {
    const cached = this.srv.get(host);
    let target = cached?.value;
    if (cached === undefined) {
      for (const service of ["_matrix-fed._tcp", "_matrix._tcp"]) {
        const [best] = orderSrv(await this.#resolver.srv(`${service}.${host}`));
        if (best !== undefined) {
          target = {
            host: best.target,
            port: best.port,
            hostHeader: host,
            tlsName: host,
          };
          break;
        }
      }
      this.srv.set(host, target, SRV_TTL_MS);
    }
    return target ?? {
      host,
      port: DEFAULT_PORT,
      hostHeader: host,
      tlsName: host,
    };
  }
}

function direct(name: ServerName, text: string): FederationTarget {
  return {
    host: name.host,
    port: name.port ?? DEFAULT_PORT,
    // The Host header is the server name as written, port included if given.
    hostHeader: text,
    tlsName: name.host,
  };
}

/**
 * How long a well-known answer may be kept: `no-store`/`no-cache` mean not at
 * all, `max-age` is obeyed up to 48 h, and 24 h applies otherwise.
 */
export function cacheLifetime(cacheControl: string | null): number {
  if (cacheControl === null) return WELL_KNOWN_DEFAULT_TTL_MS;
  const directives = cacheControl.toLowerCase().split(",").map((d) => d.trim());
  if (directives.some((d) => d === "no-store" || d === "no-cache")) return 0;
  for (const d of directives) {
    const match = /^max-age=(\d+)$/.exec(d);
    if (match) return Math.min(Number(match[1]) * 1000, WELL_KNOWN_MAX_TTL_MS);
  }
  return WELL_KNOWN_DEFAULT_TTL_MS;
}
