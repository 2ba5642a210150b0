/** @module OpenID token verification over federation (SPEC section 8). */

import { CircuitBreakers } from "../circuit_breaker.ts";
import { byStatus, type Metrics, type Track, untracked } from "../metrics.ts";
import type { HomeserverHttpClient } from "./http_client.ts";
import { parseServerName, type ServerDiscovery } from "./server_discovery.ts";

/** Time allowed for the userinfo call, discovery excluded. */
export const USERINFO_TIMEOUT_MS = 10_000;

/** Why a token was not accepted; the client only ever sees a 401. */
export class OpenIdError extends Error {
  /** True when the homeserver could not be reached or failed (5xx), not when it said no. */
  readonly homeserverFailed: boolean;

  constructor(message: string, homeserverFailed = false) {
    super(message);
    this.name = "OpenIdError";
    this.homeserverFailed = homeserverFailed;
  }
}

export interface OpenIdVerifierOptions {
  discovery: ServerDiscovery;
  client: HomeserverHttpClient;
  /** Circuits by server name; none when left out. */
  breakers?: CircuitBreakers;
  timeoutMs?: number;
  metrics?: Metrics;
}

/**
 * The server part of a Matrix user ID (`@localpart:server`), or undefined
 * when the text is not a user ID.
 */
export function userIdServer(userId: string): string | undefined {
  if (userId.length > 255 || !userId.startsWith("@")) return undefined;
  const colon = userId.indexOf(":");
  if (colon < 2 || colon === userId.length - 1) return undefined;
  return userId.slice(colon + 1);
}

/** Asks a homeserver who an OpenID access token belongs to. */
export class OpenIdVerifier {
  readonly #discovery: ServerDiscovery;
  readonly #client: HomeserverHttpClient;
  readonly #breakers: CircuitBreakers;
  readonly #timeoutMs: number;
  readonly #track: Track;

  constructor(options: OpenIdVerifierOptions) {
    this.#discovery = options.discovery;
    this.#client = options.client;
    this.#breakers = options.breakers ??
      new CircuitBreakers({ failureThreshold: 0, cooldownMs: 0 });
    this.#timeoutMs = options.timeoutMs ?? USERINFO_TIMEOUT_MS;
    this.#track = options.metrics?.track ?? untracked;
  }

  /**
   * Returns the user ID the homeserver `serverName` vouches for. Throws
   * {@link OpenIdError} (whose message never holds the token) otherwise, or
   * `CircuitOpenError` while the homeserver's circuit is open.
   */
  async verify(accessToken: string, serverName: string): Promise<string> {
    if (parseServerName(serverName) === undefined) {
      throw new OpenIdError(
        `not a valid server name: ${JSON.stringify(serverName)}`,
      );
    }
    this.#breakers.admit(serverName);
    try {
      const userId = await this.#ask(accessToken, serverName);
      this.#breakers.success(serverName);
      return userId;
    } catch (err) {
      // Only an unreachable or failing homeserver counts against its circuit.
      if (err instanceof OpenIdError && err.homeserverFailed) {
        this.#breakers.failure(serverName);
      } else {
        this.#breakers.success(serverName);
      }
      throw err;
    }
  }

  async #ask(accessToken: string, serverName: string): Promise<string> {
    let target;
    try {
      target = await this.#discovery.resolve(serverName);
    } catch (err) {
      throw new OpenIdError(
        `cannot resolve server name ${JSON.stringify(serverName)}: ${
          err instanceof Error ? err.message : String(err)
        }`,
        true,
      );
    }
    const url = new URL(
      `https://${target.hostHeader}/_matrix/federation/v1/openid/userinfo`,
    );
    url.searchParams.set("access_token", accessToken);
    let response;
    try {
      response = await this.#track(
        "userinfo",
        () =>
          this.#client.request({
            method: "GET",
            url,
            connectTo: { host: target.host, port: target.port },
            tlsName: target.tlsName,
            hostHeader: target.hostHeader,
            timeoutMs: this.#timeoutMs,
          }),
        byStatus,
      );
    } catch (err) {
      throw new OpenIdError(
        `userinfo request to ${target.host}:${target.port} failed: ${
          err instanceof Error ? err.message : String(err)
        }`,
        true,
      );
    }
    if (response.status !== 200) {
      throw new OpenIdError(
        `homeserver ${serverName} answered userinfo with HTTP ${response.status}`,
        response.status >= 500,
      );
    }
    let sub: unknown;
    try {
      sub = JSON.parse(response.body)?.sub;
    } catch {
      throw new OpenIdError(`homeserver ${serverName} answered invalid JSON`);
    }
    if (typeof sub !== "string" || userIdServer(sub) === undefined) {
      throw new OpenIdError(
        `homeserver ${serverName} answered no valid user ID`,
      );
    }
    // A homeserver may only vouch for its own users.
    if (userIdServer(sub) !== serverName) {
      throw new OpenIdError(
        `homeserver ${serverName} vouched for ${sub}, a user of another server`,
      );
    }
    return sub;
  }
}
