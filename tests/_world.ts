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
import { postWebhook, webhookBody } from "./_fakes/webhook.ts";
import { API_KEY, API_SECRET, expectedHash } from "./_utils.ts";

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
  /** A fresh call member with a delayed leave event of `timeoutMs`, and its job's names. */
  delayedMember(
    timeoutMs: number,
    options?: DelayedMemberOptions,
  ): DelayedMember;
  /** Posts a signed participant webhook to a service; resolves its status. */
  webhook(
    serviceUrl: string,
    event: string,
    m: { room: string; identity: string },
    reason?: string | number,
  ): Promise<number>;
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

export interface DelayedMemberOptions {
  roomId?: string;
  delayId?: string;
  memberId?: string;
  restricted?: boolean;
}

/** A member of a call with a delayed leave event, as tests drive it. */
export interface DelayedMember {
  delayId: string;
  /** The /delegate_delayed_leave (or /get_token) body. */
  body: Record<string, unknown>;
  userId: string;
  /** The LiveKit room and identity the service derives (SPEC 7). */
  room: string;
  identity: string;
  /** The job's Redis hash field (SPEC 12). */
  field: string;
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
  const world: World = {
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
    delayedMember(timeoutMs, options = {}) {
      const n = ++counter;
      const roomId = options.roomId ?? `!room-${n}:example.com`;
      const memberId = options.memberId ?? `member-${n}`;
      const delayId = options.delayId ??
        `syd_${n}_${crypto.randomUUID().slice(0, 6)}`;
      const body = world.tokenRequest({
        roomId,
        member: memberId,
        restricted: options.restricted ?? false,
        delay: { id: delayId, timeoutMs },
      });
      const userId = (body.member as Record<string, string>).claimed_user_id!;
      const room = expectedHash([roomId, "m.call#"]);
      const identity = expectedHash([userId, "DEVICE", memberId]);
      return {
        delayId,
        body,
        userId,
        room,
        identity,
        field: JSON.stringify([room, identity]),
      };
    },
    async webhook(serviceUrl, event, m, reason) {
      const response = await postWebhook(
        serviceUrl,
        webhookBody(event, m.room, m.identity, reason),
        { apiKey: API_KEY, apiSecret: API_SECRET },
      );
      await response.body?.cancel();
      return response.status;
    },
    async close() {
      await Promise.all([hs.close(), other.close(), sfu.close(), dns.close()]);
      await ca.cleanup();
    },
  };
  return world;
}
