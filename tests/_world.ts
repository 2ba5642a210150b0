/**
 * @module A test world: a CA, a DNS server, a full-access and a restricted
 * homeserver over HTTPS, and an SFU, with the environment for the service.
 */

import { type FakeDns, startFakeDns } from "./_fakes/dns.ts";
import {
  type FakeHomeserver,
  startFakeHomeserver,
} from "./_fakes/homeserver.ts";
import { type FakeSfu, startFakeSfu } from "./_fakes/sfu.ts";
import { makeTestCa, type TestCa } from "./_fakes/tls.ts";
import { API_KEY, API_SECRET } from "./_utils.ts";

export interface World {
  ca: TestCa;
  dns: FakeDns;
  /** The full-access homeserver, `hs.test:<port>`. */
  hs: FakeHomeserver;
  /** A restricted homeserver, `other.test:<port>`. */
  other: FakeHomeserver;
  sfu: FakeSfu;
  /** Server names of `hs` and `other`. */
  hsName: string;
  otherName: string;
  /** The service's environment, with `extra` on top. */
  env(extra?: Record<string, string>): Record<string, string>;
  /** A /get_token body for `user` on `server` with a fresh token that `hs`/`other` knows. */
  tokenRequest(options?: TokenRequestOptions): Record<string, unknown>;
  close(): Promise<void>;
}

export interface TokenRequestOptions {
  restricted?: boolean;
  localpart?: string;
  device?: string;
  member?: string;
  roomId?: string;
  delay?: { id: string; timeoutMs: number };
}

let counter = 0;

/** Starts every fake of a world. */
export async function startWorld(): Promise<World> {
  const ca = await makeTestCa();
  const dns = await startFakeDns();
  const hs = await startFakeHomeserver({ ca, names: ["hs.test"] });
  const other = await startFakeHomeserver({ ca, names: ["other.test"] });
  const sfu = await startFakeSfu({ apiKey: API_KEY, apiSecret: API_SECRET });
  dns.a.set("hs.test", ["127.0.0.1"]);
  dns.a.set("other.test", ["127.0.0.1"]);
  const hsName = `hs.test:${hs.port}`;
  const otherName = `other.test:${other.port}`;
  hs.wellKnownClient = {
    status: 200,
    body: { "m.homeserver": { base_url: `https://${hsName}` } },
  };
  other.wellKnownClient = {
    status: 200,
    body: { "m.homeserver": { base_url: `https://${otherName}` } },
  };
  return {
    ca,
    dns,
    hs,
    other,
    sfu,
    hsName,
    otherName,
    env: (extra = {}) => ({
      LIVEKIT_URL: sfu.url,
      LIVEKIT_KEY: API_KEY,
      LIVEKIT_SECRET: API_SECRET,
      LIVEKIT_FULL_ACCESS_HOMESERVERS: hsName,
      LIVEKIT_DNS_SERVER: dns.nameServer,
      SSL_CERT_FILE: ca.caFile,
      LIVEKIT_LOG_LEVEL: "debug",
      ...extra,
    }),
    tokenRequest(options = {}) {
      const server = options.restricted ? other : hs;
      const serverName = options.restricted ? otherName : hsName;
      const userId = `@${options.localpart ?? "alice"}:${serverName}`;
      const token = `token-${++counter}-${crypto.randomUUID()}`;
      server.tokens.set(token, userId);
      return {
        room_id: options.roomId ?? "!room:example.com",
        slot_id: "m.call#",
        openid_token: {
          access_token: token,
          token_type: "Bearer",
          matrix_server_name: serverName,
          expires_in: 3600,
        },
        member: {
          id: options.member ?? "member-1",
          claimed_user_id: userId,
          claimed_device_id: options.device ?? "DEVICE",
        },
        ...(options.delay
          ? {
            delay_id: options.delay.id,
            delay_timeout: options.delay.timeoutMs,
          }
          : {}),
      };
    },
    async close() {
      await Promise.all([hs.close(), other.close(), sfu.close(), dns.close()]);
      await ca.cleanup();
    },
  };
}
