/** @module Self-test of the webhook helpers against livekit-server-sdk's own receiver. */

import assert from "node:assert/strict";
import { DisconnectReason } from "@livekit/protocol";
import { decodeJwt } from "jose";
import { WebhookReceiver } from "livekit-server-sdk";
import { postWebhook, signWebhook, webhookBody } from "../_fakes/webhook.ts";

const KEYS = {
  apiKey: "test-key",
  apiSecret: "test-secret-that-is-long-enough-for-hs256",
};

Deno.test("signWebhook() is accepted by livekit-server-sdk's WebhookReceiver", async () => {
  const body = webhookBody(
    "participant_left",
    "room-1",
    "ident-1",
    "CLIENT_INITIATED",
  );
  const auth = await signWebhook(body, KEYS);
  assert.ok(!auth.startsWith("Bearer "));
  const event = await new WebhookReceiver(KEYS.apiKey, KEYS.apiSecret)
    .receive(body, auth);
  assert.equal(event.event, "participant_left");
  assert.equal(event.room?.name, "room-1");
  assert.equal(event.participant?.identity, "ident-1");
  assert.equal(
    event.participant?.disconnectReason,
    DisconnectReason.CLIENT_INITIATED,
  );
  assert.match(event.id, /^EV_/);
  assert.ok(Math.abs(Number(event.createdAt) - Date.now() / 1000) < 5);
});

Deno.test("signWebhook() signs iss, nbf, exp and the body's padded base64 sha256", async () => {
  const body = webhookBody("participant_joined", "room-1", "ident-1");
  const claims = decodeJwt(await signWebhook(body, KEYS));
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body)),
  );
  assert.equal(claims.sha256, btoa(String.fromCharCode(...digest)));
  assert.match(String(claims.sha256), /=$/);
  assert.equal(claims.iss, KEYS.apiKey);
  const now = Date.now() / 1000;
  assert.ok((claims.nbf ?? Infinity) <= now);
  assert.ok((claims.exp ?? 0) > now);
});

Deno.test("webhookBody() uses protobuf JSON names and keeps numeric reasons", async () => {
  const body = JSON.parse(
    webhookBody("participant_connection_aborted", "r", "i", 5),
  );
  assert.deepEqual(body.participant, { identity: "i", disconnectReason: 5 });
  assert.equal(body.room.name, "r");
  assert.equal(typeof body.createdAt, "string");
  assert.equal(
    "disconnectReason" in
      JSON.parse(webhookBody("participant_joined", "r", "i")).participant,
    false,
  );
  const raw = webhookBody("participant_left", "r", "i", 1);
  const event = await new WebhookReceiver(KEYS.apiKey, KEYS.apiSecret)
    .receive(raw, await signWebhook(raw, KEYS));
  assert.equal(event.participant?.disconnectReason, 1);
});

Deno.test("WebhookReceiver refuses a webhook signed with another secret or body", async () => {
  const body = webhookBody("participant_joined", "room-1", "ident-1");
  const receiver = new WebhookReceiver(KEYS.apiKey, KEYS.apiSecret);
  const wrongSecret = await signWebhook(body, { ...KEYS, apiSecret: "nope" });
  await assert.rejects(receiver.receive(body, wrongSecret));
  const otherBody = await signWebhook(body + " ", KEYS);
  await assert.rejects(receiver.receive(body, otherBody), {
    message: "sha256 checksum of body does not match",
  });
});

Deno.test("postWebhook() posts the raw body to /sfu_webhook with the signature", async () => {
  const seen: {
    path: string;
    type: string | null;
    auth: string | null;
    body: string;
  }[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => {
      seen.push({
        path: new URL(req.url).pathname,
        type: req.headers.get("content-type"),
        auth: req.headers.get("authorization"),
        body: await req.text(),
      });
      return new Response(null, { status: 200 });
    },
  );
  try {
    const base = `http://127.0.0.1:${server.addr.port}/`;
    const body = webhookBody("participant_joined", "room-1", "ident-1");
    const res = await postWebhook(base, body, KEYS);
    await res.body?.cancel();
    assert.equal(res.status, 200);
    const forged = await postWebhook(base, body, {
      ...KEYS,
      authorization: "not-a-jwt",
    });
    await forged.body?.cancel();

    assert.equal(seen.length, 2);
    assert.equal(seen[0]?.path, "/sfu_webhook");
    assert.equal(seen[0]?.type, "application/webhook+json");
    assert.equal(seen[0]?.body, body);
    await new WebhookReceiver(KEYS.apiKey, KEYS.apiSecret)
      .receive(seen[0]?.body ?? "", seen[0]?.auth ?? "");
    assert.equal(seen[1]?.auth, "not-a-jwt");
  } finally {
    await server.shutdown();
  }
});
