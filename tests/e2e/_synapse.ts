/**
 * @module A real Synapse (PyPI's matrix-synapse, in the cache's virtualenv)
 * for the end-to-end suite: SQLite, a plain-HTTP Client-Server listener, a
 * federation listener over TLS with a certificate from the test CA, MSC4140
 * delayed events on, registration by shared secret, rate limits out of the way.
 */

import { createHmac } from "node:crypto";
import type { TestCa } from "../_fakes/tls.ts";
import { Child } from "./_process.ts";
import { freePorts, poll, PollAbort } from "./_tools.ts";

/** The event type of a MatrixRTC call membership (MSC3401 / MSC4143). */
export const CALL_MEMBER = "org.matrix.msc3401.call.member";

/** A rate limit nobody reaches in a test. */
const UNLIMITED = { per_second: 10_000, burst_count: 10_000 };

export interface SynapseOptions {
  python: string;
  ca: TestCa;
  /** Temporary folder for its configuration, database and log. */
  dir: string;
  /**
   * How the server is named: `127.0.0.1:<port>` (an IP literal) or
   * `localhost:<port>` (a host name with an explicit port); either way the
   * federation port is given, so no .well-known or SRV look-up is needed.
   */
  naming: "ip" | "localhost";
}

/** One running homeserver. */
export class Synapse {
  readonly serverName: string;
  /** Base URL of the Client-Server API (plain HTTP on loopback). */
  readonly clientUrl: string;
  readonly child: Child;
  readonly #secret: string;
  #users = 0;

  private constructor(
    serverName: string,
    clientUrl: string,
    child: Child,
    secret: string,
  ) {
    this.serverName = serverName;
    this.clientUrl = clientUrl;
    this.child = child;
    this.#secret = secret;
  }

  /** Writes a configuration, starts Synapse and waits until both listeners answer. */
  static async start(options: SynapseOptions): Promise<Synapse> {
    const { dir, ca } = options;
    await Deno.mkdir(`${dir}/media`, { recursive: true });
    const [clientPort, federationPort] = freePorts(2) as [number, number];
    const host = options.naming === "ip" ? "127.0.0.1" : "localhost";
    const serverName = `${host}:${federationPort}`;
    const clientUrl = `http://127.0.0.1:${clientPort}`;
    const { certPem, keyPem } = await ca.issue([host]);
    await Deno.writeTextFile(`${dir}/tls.crt`, certPem);
    await Deno.writeTextFile(`${dir}/tls.key`, keyPem);
    await Deno.writeTextFile(`${dir}/signing.key`, signingKey());
    const secret = randomText(24);
    const config = {
      server_name: serverName,
      pid_file: `${dir}/homeserver.pid`,
      public_baseurl: `${clientUrl}/`,
      listeners: [
        {
          port: clientPort,
          bind_addresses: ["127.0.0.1"],
          type: "http",
          tls: false,
          x_forwarded: false,
          resources: [{ names: ["client"], compress: false }],
        },
        {
          // Serves /_matrix/federation/v1/openid/userinfo, which the service asks.
          port: federationPort,
          bind_addresses: options.naming === "ip"
            ? ["127.0.0.1"]
            : ["127.0.0.1", "::1"],
          type: "http",
          tls: true,
          resources: [{ names: ["federation"], compress: false }],
        },
      ],
      tls_certificate_path: `${dir}/tls.crt`,
      tls_private_key_path: `${dir}/tls.key`,
      database: {
        name: "sqlite3",
        args: { database: `${dir}/homeserver.db` },
      },
      media_store_path: `${dir}/media`,
      signing_key_path: `${dir}/signing.key`,
      // Nothing leaves the machine: no key servers, no stats, no previews.
      trusted_key_servers: [],
      suppress_key_server_warning: true,
      report_stats: false,
      url_preview_enabled: false,
      enable_registration: false,
      registration_shared_secret: secret,
      macaroon_secret_key: randomText(32),
      form_secret: randomText(32),
      // MSC4140: delayed events are on when a maximum delay is configured.
      max_event_delay_duration: "24h",
      rc_message: UNLIMITED,
      rc_registration: UNLIMITED,
      rc_login: {
        address: UNLIMITED,
        account: UNLIMITED,
        failed_attempts: UNLIMITED,
      },
      rc_joins: { local: UNLIMITED, remote: UNLIMITED },
      rc_room_creation: UNLIMITED,
      // Restart and send are rate limited per client IP: the service's.
      rc_delayed_event_mgmt: UNLIMITED,
    };
    // JSON is YAML: Synapse reads it as its configuration file.
    await Deno.writeTextFile(
      `${dir}/homeserver.yaml`,
      JSON.stringify(config, null, 2),
    );
    const child = new Child(`synapse ${serverName}`, options.python, {
      args: [
        "-m",
        "synapse.app.homeserver",
        "--config-path",
        "homeserver.yaml",
      ],
      cwd: dir,
      logFile: `${dir}/synapse.log`,
    });
    const synapse = new Synapse(serverName, clientUrl, child, secret);
    const tls = Deno.createHttpClient({ caCerts: [ca.caPem] });
    try {
      await poll(`Synapse ${serverName} to answer`, async () => {
        if (child.exited) throw new PollAbort("Synapse exited");
        const versions = await fetch(`${clientUrl}/_matrix/client/versions`);
        await versions.body?.cancel();
        // The name is checked against the certificate, as the service does.
        const federation = await fetch(
          `https://${serverName}/_matrix/federation/v1/version`,
          { client: tls },
        );
        await federation.body?.cancel();
        return versions.ok && federation.ok ? true : undefined;
      }, 120_000);
    } catch (err) {
      await child.stop();
      throw new Error(
        `${err instanceof Error ? err.message : err}\n${child.tail()}`,
      );
    } finally {
      tls.close();
    }
    return synapse;
  }

  /** Registers a new user through the shared-secret admin API. */
  async register(localpart: string): Promise<MatrixUser> {
    const username = `${localpart}${++this.#users}`;
    const password = randomText(16);
    const nonceResponse = await fetch(
      `${this.clientUrl}/_synapse/admin/v1/register`,
    );
    const { nonce } = await nonceResponse.json();
    const mac = createHmac("sha1", this.#secret)
      .update(`${nonce}\0${username}\0${password}\0notadmin`)
      .digest("hex");
    const response = await fetch(
      `${this.clientUrl}/_synapse/admin/v1/register`,
      {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          nonce,
          username,
          password,
          admin: false,
          mac,
        }),
      },
    );
    const body = await response.json();
    if (!response.ok) {
      throw new Error(
        `registering ${username} failed: ${response.status} ${
          JSON.stringify(body)
        }`,
      );
    }
    return new MatrixUser(
      this,
      body.user_id,
      body.device_id,
      body.access_token,
    );
  }

  stop(): Promise<Deno.CommandStatus> {
    return this.child.stop();
  }
}

/** The OpenID token a client sends to the service (Client-Server API 10.x "OpenID"). */
export interface OpenIdToken {
  access_token: string;
  token_type: string;
  matrix_server_name: string;
  expires_in: number;
}

/** A delayed event as Synapse lists it (MSC4140). */
export interface DelayedEvent {
  delay_id: string;
  room_id: string;
  type: string;
  state_key?: string;
  delay_ms?: number;
  delay?: number;
  /** When its timer was (re)started, ms since the epoch (`running_since` before). */
  delayed_since_ts?: number;
  running_since?: number;
  content: Record<string, unknown>;
}

/** A registered user talking to the Client-Server API with its access token. */
export class MatrixUser {
  readonly homeserver: Synapse;
  readonly userId: string;
  readonly deviceId: string;
  readonly #accessToken: string;

  constructor(
    homeserver: Synapse,
    userId: string,
    deviceId: string,
    accessToken: string,
  ) {
    this.homeserver = homeserver;
    this.userId = userId;
    this.deviceId = deviceId;
    this.#accessToken = accessToken;
  }

  /** One authenticated call; throws on anything but 2xx unless `allow` lists the status. */
  async call(
    method: string,
    path: string,
    body?: unknown,
    allow: number[] = [],
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${this.homeserver.clientUrl}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${this.#accessToken}`,
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    const parsed = text === "" ? {} : JSON.parse(text);
    if (!response.ok && !allow.includes(response.status)) {
      throw new Error(`${method} ${path}: ${response.status} ${text}`);
    }
    return { status: response.status, body: parsed };
  }

  /** POST /user/{userId}/openid/request_token. */
  async openIdToken(): Promise<OpenIdToken> {
    const { body } = await this.call(
      "POST",
      `/_matrix/client/v3/user/${
        encodeURIComponent(this.userId)
      }/openid/request_token`,
      {},
    );
    return body as unknown as OpenIdToken;
  }

  /** Creates a private room and returns its ID. */
  async createRoom(name: string): Promise<string> {
    const { body } = await this.call("POST", "/_matrix/client/v3/createRoom", {
      preset: "private_chat",
      name,
    });
    return body.room_id as string;
  }

  #statePath(roomId: string, type: string, stateKey: string): string {
    return `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/${
      encodeURIComponent(type)
    }/${encodeURIComponent(stateKey)}`;
  }

  /** Sends a state event now; returns its event ID. */
  async sendState(
    roomId: string,
    type: string,
    stateKey: string,
    content: Record<string, unknown>,
  ): Promise<string> {
    const { body } = await this.call(
      "PUT",
      this.#statePath(roomId, type, stateKey),
      content,
    );
    return body.event_id as string;
  }

  /** Schedules a state event as an MSC4140 delayed event; returns its delay ID. */
  async sendDelayedState(
    roomId: string,
    type: string,
    stateKey: string,
    content: Record<string, unknown>,
    delayMs: number,
  ): Promise<string> {
    const { body } = await this.call(
      "PUT",
      `${
        this.#statePath(roomId, type, stateKey)
      }?org.matrix.msc4140.delay=${delayMs}`,
      content,
    );
    if (typeof body.delay_id !== "string") {
      throw new Error(`no delay_id in ${JSON.stringify(body)}`);
    }
    return body.delay_id;
  }

  /** The current content of a state event, or undefined when there is none. */
  async state(
    roomId: string,
    type: string,
    stateKey: string,
  ): Promise<Record<string, unknown> | undefined> {
    const { status, body } = await this.call(
      "GET",
      this.#statePath(roomId, type, stateKey),
      undefined,
      [404],
    );
    return status === 404 ? undefined : body;
  }

  /** The full state event (with `origin_server_ts`), or undefined. */
  async stateEvent(
    roomId: string,
    type: string,
    stateKey: string,
  ): Promise<Record<string, unknown> | undefined> {
    const { status, body } = await this.call(
      "GET",
      `${this.#statePath(roomId, type, stateKey)}?format=event`,
      undefined,
      [404],
    );
    return status === 404 ? undefined : body;
  }

  /** This user's scheduled delayed events (MSC4140). */
  async delayedEvents(): Promise<DelayedEvent[]> {
    const { body } = await this.call(
      "GET",
      "/_matrix/client/unstable/org.matrix.msc4140/delayed_events",
    );
    return body.delayed_events as DelayedEvent[];
  }
}

/** When a delayed event's timer was last (re)started. */
export function runningSince(event: DelayedEvent): number {
  return event.delayed_since_ts ?? event.running_since ?? 0;
}

function randomText(bytes: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

/** A Synapse signing key file: `ed25519 <key id> <unpadded base64 seed>`. */
function signingKey(): string {
  const seed = crypto.getRandomValues(new Uint8Array(32));
  const base64 = btoa(String.fromCharCode(...seed)).replace(/=+$/, "");
  return `ed25519 a_e2e ${base64}\n`;
}
