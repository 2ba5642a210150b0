/** @module OpenID token verification over federation (SPEC section 8). */

import type { HomeserverHttpClient } from "./http_client.ts";
import type { ServerDiscovery } from "./server_discovery.ts";

/** Time allowed for the userinfo call, discovery excluded. */
export const USERINFO_TIMEOUT_MS = 10_000;

/** Why a token was not accepted; the client only ever sees a 401. */
export class OpenIdError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OpenIdError";
  }
}

export interface OpenIdVerifierOptions {
  discovery: ServerDiscovery;
  client: HomeserverHttpClient;
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

  constructor(options: OpenIdVerifierOptions) {
    this.#discovery = options.discovery;
    this.#client = options.client;
  }

  /**
   * Returns the user ID the homeserver `serverName` vouches for. Throws
   * {@link OpenIdError} (whose message never holds the token) otherwise.
   */
  async verify(accessToken: string, serverName: string): Promise<string> {
    let target;
    try {
      target = await this.#discovery.resolve(serverName);
    } catch (err) {
      throw new OpenIdError(
        `cannot resolve server name ${JSON.stringify(serverName)}: ${
          err instanceof Error ? err.message : String(err)
        }`,
      );
    }
    const url = new URL(
      `https://${target.hostHeader}/_matrix/federation/v1/openid/userinfo`,
    );
    url.searchParams.set("access_token", accessToken);
    let response;
    try {
      response = await this.#client.request({
        method: "GET",
        url,
        connectTo: { host: target.host, port: target.port },
        tlsName: target.tlsName,
        hostHeader: target.hostHeader,
        timeoutMs: USERINFO_TIMEOUT_MS,
      });
    } catch (err) {
      throw new OpenIdError(
        `userinfo request to ${target.host}:${target.port} failed: ${
          err instanceof Error ? err.message : String(err)
        }`,
      );
    }
    if (response.status !== 200) {
      throw new OpenIdError(
        `homeserver ${serverName} answered userinfo with HTTP ${response.status}`,
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
