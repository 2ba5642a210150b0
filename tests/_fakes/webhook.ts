/** @module Builds, signs and posts LiveKit webhooks the way the SFU does. */

import { SignJWT } from "jose";

/** The API key and secret a webhook is signed with. */
export interface WebhookKeys {
  apiKey: string;
  apiSecret: string;
}

/**
 * A webhook body in protobuf JSON names, e.g.
 * `{"event":"participant_left","room":{"name":"R"},"participant":{"identity":"I","disconnectReason":"CLIENT_INITIATED"},...}`.
 * `disconnectReason` is left out when undefined, as protobuf JSON omits
 * default values; a number is kept numeric (the enum's wire value).
 */
export function webhookBody(
  event:
    | "participant_joined"
    | "participant_left"
    | "participant_connection_aborted"
    | string,
  room: string,
  identity: string,
  disconnectReason?: string | number,
): string {
  const participant: Record<string, unknown> = { identity };
  if (disconnectReason !== undefined) {
    participant.disconnectReason = disconnectReason;
  }
  return JSON.stringify({
    event,
    room: { name: room },
    participant,
    id: `EV_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`,
    // int64 fields are strings in protobuf JSON.
    createdAt: String(Math.floor(Date.now() / 1000)),
  });
}

/** Standard padded base64 of SHA-256 of the body's UTF-8 bytes. */
async function sha256Base64(body: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(body),
  );
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

/**
 * The `Authorization` header value LiveKit sends with a webhook: a bare
 * HS256 JWT (no `Bearer `), `iss` = API key, valid 5 minutes from now,
 * with a `sha256` claim over the raw body.
 */
export async function signWebhook(
  body: string,
  opts: WebhookKeys,
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return await new SignJWT({ sha256: await sha256Base64(body) })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer(opts.apiKey)
    .setNotBefore(now)
    .setExpirationTime(now + 300)
    .sign(new TextEncoder().encode(opts.apiSecret));
}

/**
 * POSTs `body` to `<serviceUrl>/sfu_webhook` as `application/webhook+json`,
 * signed with `opts` unless `opts.authorization` gives the header to send.
 * The caller must consume or cancel the response body.
 */
export async function postWebhook(
  serviceUrl: string,
  body: string,
  opts: WebhookKeys & { authorization?: string },
): Promise<Response> {
  const authorization = opts.authorization ?? await signWebhook(body, opts);
  return await fetch(`${serviceUrl.replace(/\/+$/, "")}/sfu_webhook`, {
    method: "POST",
    headers: {
      "content-type": "application/webhook+json",
      authorization,
    },
    body,
  });
}
