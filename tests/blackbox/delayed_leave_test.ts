/**
 * @module Black-box tests of delayed-leave delegation (SPEC 5, 6, 9, 11):
 * the real process, a homeserver recording restart/send calls, an SFU
 * answering presence look-ups, and signed webhooks. Delays are 1.5 to 3 s.
 */

import assert from "node:assert/strict";
import { postWebhook, webhookBody } from "../_fakes/webhook.ts";
import {
  API_KEY,
  API_SECRET,
  expectedHash,
  type ServiceProcess,
  startService,
} from "../_utils.ts";
import {
  type DelayedMember,
  type DelayedMemberOptions,
  startWorld,
  type World,
} from "../_world.ts";

let world: World;
let service: ServiceProcess;
const KEYS = { apiKey: API_KEY, apiSecret: API_SECRET };

Deno.test.beforeAll(async () => {
  world = await startWorld();
  service = await startService(world.env());
});

Deno.test.afterAll(async () => {
  await service.stop();
  await world.close();
});

const sanitizers = { sanitizeOps: false, sanitizeResources: false };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Member = DelayedMember;
const member = (timeoutMs: number, options?: DelayedMemberOptions) =>
  world.delayedMember(timeoutMs, options);

async function delegate(m: Member): Promise<void> {
  const { status, body } = await service.post(
    "/delegate_delayed_leave",
    m.body,
  );
  assert.equal(status, 200, JSON.stringify(body));
  assert.deepEqual(body, {});
}

async function webhook(
  event: string,
  m: Member,
  reason?: string | number,
): Promise<{ status: number }> {
  return { status: await world.webhook(service.url, event, m, reason) };
}

const restarts = (m: Member) => world.hs.calls("restart", m.delayId);
const sends = (m: Member) => world.hs.calls("send", m.delayId);

Deno.test({
  name:
    "a participant who never connects gets the leave sent after the waiting timeout",
  ...sanitizers,
  async fn() {
    const m = member(1500);
    const started = Date.now();
    await delegate(m);
    await world.hs.waitFor(() => sends(m).length === 1, 5_000);
    assert.ok(sends(m)[0]!.at - started >= 1400, "not before the timeout");
    assert.equal(restarts(m).length, 0);
    assert.equal(sends(m)[0]!.body, "{}");
  },
});

Deno.test({
  name:
    "a participant already on the SFU is found by the look-up and kept alive",
  ...sanitizers,
  async fn() {
    const m = member(2000);
    world.sfu.addParticipant(m.room, m.identity);
    await delegate(m);
    await world.hs.waitFor(() => restarts(m).length >= 1, 1_500);
    assert.ok(
      world.sfu.lookups.some((l) =>
        l.room === m.room && l.identity === m.identity
      ),
    );
    await sleep(2_500);
    assert.equal(sends(m).length, 0, "kept alive past its timeout");
    world.sfu.removeParticipant(m.room, m.identity);
    assert.equal(
      (await webhook("participant_left", m, "CLIENT_INITIATED")).status,
      200,
    );
    await world.hs.waitFor(() => sends(m).length === 1, 2_000);
  },
});

Deno.test({
  name: "a connection aborted before connecting ends the job without a send",
  ...sanitizers,
  async fn() {
    const m = member(1500);
    await delegate(m);
    assert.equal(
      (await webhook("participant_connection_aborted", m, "JOIN_FAILURE"))
        .status,
      200,
    );
    await sleep(2_500);
    assert.equal(sends(m).length, 0);
    assert.equal(restarts(m).length, 0);
  },
});

Deno.test({
  name: "a connection aborted after connecting sends the leave",
  ...sanitizers,
  async fn() {
    const m = member(3000);
    await delegate(m);
    await webhook("participant_joined", m);
    await world.hs.waitFor(() => restarts(m).length >= 1, 1_500);
    await webhook("participant_connection_aborted", m, "SIGNAL_CLOSE");
    await world.hs.waitFor(() => sends(m).length === 1, 1_500);
  },
});

Deno.test({
  name: "an intentional leave sends the leave at once",
  ...sanitizers,
  async fn() {
    const m = member(3000);
    await delegate(m);
    await webhook("participant_joined", m);
    await world.hs.waitFor(() => restarts(m).length >= 1, 1_500);
    const left = Date.now();
    await webhook("participant_left", m, 1 /* CLIENT_INITIATED as a number */);
    await world.hs.waitFor(() => sends(m).length === 1, 1_500);
    assert.ok(sends(m)[0]!.at - left < 1_000);
  },
});

Deno.test({
  name:
    "a leave while still waiting is ignored; the waiting timeout then sends",
  ...sanitizers,
  async fn() {
    const m = member(1500);
    await delegate(m);
    await webhook("participant_left", m, "CLIENT_INITIATED");
    await sleep(500);
    assert.equal(sends(m).length, 0);
    await world.hs.waitFor(() => sends(m).length === 1, 3_000);
  },
});

Deno.test({
  name:
    "a connected participant's delayed event is restarted every 80 % of its timeout",
  ...sanitizers,
  async fn() {
    const m = member(1500);
    await delegate(m);
    await webhook("participant_joined", m);
    await world.hs.waitFor(() => restarts(m).length >= 4, 5_000);
    const times = restarts(m).map((r) => r.at);
    for (let i = 1; i < times.length; i++) {
      const gap = times[i]! - times[i - 1]!;
      assert.ok(gap >= 1_100 && gap < 1_600, `restart gap ${gap} ms`);
    }
    assert.equal(sends(m).length, 0);
    await webhook("participant_left", m, "CLIENT_INITIATED");
    await world.hs.waitFor(() => sends(m).length === 1, 1_500);
  },
});

Deno.test({
  name:
    "a delayed event gone from the homeserver (404 on restart) ends the job without a send",
  ...sanitizers,
  async fn() {
    const m = member(1500);
    world.hs.delayed.set(m.delayId, {
      restart: [{ status: 404, body: { errcode: "M_NOT_FOUND" } }],
    });
    await delegate(m);
    await webhook("participant_joined", m);
    await world.hs.waitFor(() => restarts(m).length === 1, 1_500);
    await webhook("participant_left", m, "CLIENT_INITIATED");
    await sleep(2_000);
    assert.equal(restarts(m).length, 1);
    assert.equal(sends(m).length, 0);
  },
});

Deno.test({
  name: "a leave already sent (404 on send) ends the job without retrying",
  ...sanitizers,
  async fn() {
    const m = member(1500);
    world.hs.delayed.set(m.delayId, { send: [{ status: 404 }] });
    await delegate(m);
    await world.hs.waitFor(() => sends(m).length === 1, 3_000);
    await sleep(1_500);
    assert.equal(sends(m).length, 1);
    await service.waitForLog(/already sent or cancelled/);
  },
});

Deno.test({
  name: "a send failing with 5xx is retried until it succeeds",
  ...sanitizers,
  async fn() {
    // Connected, so the send may retry until the restart deadline (6 s away).
    const m = member(6000);
    world.hs.delayed.set(m.delayId, {
      send: [{ status: 502 }, { status: 500 }],
    });
    await delegate(m);
    await webhook("participant_joined", m);
    await world.hs.waitFor(() => restarts(m).length === 1, 1_500);
    await webhook("participant_left", m, "CLIENT_INITIATED");
    await world.hs.waitFor(() => sends(m).length === 3, 6_000);
    await sleep(1_000);
    assert.equal(sends(m).length, 3);
  },
});

const HINTS: [
  string,
  () => { status: number; body?: unknown; headers?: Record<string, string> },
  number,
][] = [
  [
    "Retry-After seconds",
    () => ({ status: 429, headers: { "Retry-After": "2" } }),
    2000,
  ],
  [
    "a Retry-After HTTP date",
    () => ({
      status: 429,
      headers: { "Retry-After": new Date(Date.now() + 3_000).toUTCString() },
    }),
    1900,
  ],
  [
    "retry_after_ms rounded up to seconds",
    () => ({
      status: 429,
      body: { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 1100 },
    }),
    2000,
  ],
];

for (const [hint, answer, minGap] of HINTS) {
  Deno.test({
    name: `a 429 on restart with ${hint} is retried after the hint`,
    ...sanitizers,
    async fn() {
      const m = member(6000);
      world.hs.delayed.set(m.delayId, { restart: [answer()] });
      await delegate(m);
      await webhook("participant_joined", m);
      await world.hs.waitFor(() => restarts(m).length === 2, 6_000);
      const [first, second] = restarts(m);
      const gap = second!.at - first!.at;
      assert.ok(
        gap >= minGap - 100,
        `retried after ${gap} ms, hint ${minGap} ms`,
      );
      assert.ok(
        gap < minGap + 1_500,
        `retried after ${gap} ms, hint ${minGap} ms`,
      );
      await webhook("participant_left", m, "CLIENT_INITIATED");
      await world.hs.waitFor(() => sends(m).length === 1, 1_500);
    },
  });
}

Deno.test({
  name: "a newer job for the same participant replaces the older one",
  ...sanitizers,
  async fn() {
    const old = member(1500, {
      roomId: "!replace:example.com",
      memberId: "same",
    });
    const fresh = member(3000, {
      roomId: "!replace:example.com",
      memberId: "same",
    });
    assert.equal(old.identity, fresh.identity);
    await delegate(old);
    await delegate(fresh);
    await webhook("participant_joined", fresh);
    await world.hs.waitFor(() => restarts(fresh).length >= 1, 1_500);
    await sleep(2_000);
    await webhook("participant_left", fresh, "CLIENT_INITIATED");
    await world.hs.waitFor(() => sends(fresh).length === 1, 1_500);
    await sleep(300);
    assert.equal(restarts(old).length, 0, "the old job never acts");
    assert.equal(sends(old).length, 0, "the old job never sends");
  },
});

Deno.test({
  name: "two participants of one room do not affect each other's jobs",
  ...sanitizers,
  async fn() {
    const alice = member(1500, {
      roomId: "!shared:example.com",
      memberId: "alice",
    });
    const bob = member(1500, {
      roomId: "!shared:example.com",
      memberId: "bob",
    });
    assert.equal(alice.room, bob.room);
    await delegate(alice);
    await delegate(bob);
    await webhook("participant_joined", alice);
    await webhook("participant_joined", bob);
    await webhook("participant_left", alice, "CLIENT_INITIATED");
    await world.hs.waitFor(() => sends(alice).length === 1, 1_500);
    await sleep(2_000);
    assert.equal(sends(bob).length, 0, "bob is still in the call");
    assert.ok(restarts(bob).length >= 2, "bob's event is still restarted");
    await webhook("participant_left", bob, "CLIENT_INITIATED");
    await world.hs.waitFor(() => sends(bob).length === 1, 1_500);
  },
});

Deno.test({
  name:
    "/delegate_delayed_leave refuses a restricted user with 403 M_FORBIDDEN",
  ...sanitizers,
  async fn() {
    const m = member(1500, { restricted: true });
    const { status, body } = await service.post(
      "/delegate_delayed_leave",
      m.body,
    );
    assert.equal(status, 403);
    assert.equal(body.errcode, "M_FORBIDDEN");
  },
});

Deno.test({
  name:
    "/delegate_delayed_leave requires the delay pair (400 M_BAD_JSON) before any outgoing call",
  ...sanitizers,
  async fn() {
    const m = member(1500);
    delete m.body.delay_id;
    delete m.body.delay_timeout;
    const calls = world.hs.requests.length;
    const { status, body } = await service.post(
      "/delegate_delayed_leave",
      m.body,
    );
    assert.equal(status, 400);
    assert.equal(body.errcode, "M_BAD_JSON");
    assert.equal(world.hs.requests.length, calls);
  },
});

Deno.test({
  name: "/delegate_delayed_leave answers 401 for an unknown token",
  ...sanitizers,
  async fn() {
    const m = member(1500);
    (m.body.openid_token as Record<string, string>).access_token = "nope";
    const { status } = await service.post("/delegate_delayed_leave", m.body);
    assert.equal(status, 401);
  },
});

Deno.test({
  name:
    "/delegate_delayed_leave refuses an unresolvable CS API with 400 and creates no room",
  ...sanitizers,
  async fn() {
    // A fresh process: the shared one has the CS API cached (4 h).
    const fresh = await startService(world.env());
    const saved = world.hs.wellKnownClient;
    world.hs.wellKnownClient = { status: 200, body: { "m.homeserver": {} } };
    try {
      const m = member(1500, { roomId: "!unresolvable:example.com" });
      const { status, body } = await fresh.post(
        "/delegate_delayed_leave",
        m.body,
      );
      assert.equal(status, 400);
      assert.equal(body.errcode, "M_BAD_JSON");
      assert.ok(!world.sfu.rooms.has(m.room));
    } finally {
      world.hs.wellKnownClient = saved;
      await fresh.stop();
    }
  },
});

Deno.test({
  name: "/get_token with delay parameters returns a token and starts a job",
  ...sanitizers,
  async fn() {
    const m = member(1500);
    const { status, body } = await service.post("/get_token", m.body);
    assert.equal(status, 200);
    assert.equal(typeof body.jwt, "string");
    assert.ok(world.sfu.rooms.has(m.room), "room created first");
    await webhook("participant_joined", m);
    await world.hs.waitFor(() => restarts(m).length >= 1, 1_500);
    await webhook("participant_left", m, "CLIENT_INITIATED");
    await world.hs.waitFor(() => sends(m).length === 1, 1_500);
  },
});

Deno.test({
  name: "/sfu/get with delay parameters starts a job for the legacy identity",
  ...sanitizers,
  async fn() {
    const m = member(1500);
    const legacy = {
      room: "!legacy-delay:example.com",
      openid_token: m.body.openid_token,
      device_id: "LEGACY",
      delay_id: m.delayId,
      delay_timeout: 1500,
    };
    const { status } = await service.post("/sfu/get", legacy);
    assert.equal(status, 200);
    const target = {
      ...m,
      room: expectedHash(["!legacy-delay:example.com", "m.call#ROOM"]),
      identity: `${m.userId}:LEGACY`,
    };
    await webhook("participant_joined", target);
    await world.hs.waitFor(() => restarts(m).length >= 1, 1_500);
    await webhook("participant_left", target, "CLIENT_INITIATED");
    await world.hs.waitFor(() => sends(m).length === 1, 1_500);
  },
});

Deno.test({
  name: "the delay ID is path-escaped in restart and send calls",
  ...sanitizers,
  async fn() {
    const m = member(1500, { delayId: "weird/id?x=1#frag" });
    await delegate(m);
    await world.hs.waitFor(() => sends(m).length === 1, 3_000);
    assert.equal(
      sends(m)[0]!.path,
      "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/weird%2Fid%3Fx%3D1%23frag/send",
    );
  },
});

Deno.test({
  name:
    "/sfu_webhook answers 401 to a bad signature, a bad body hash or no signature",
  ...sanitizers,
  async fn() {
    const m = member(1500);
    const body = webhookBody("participant_joined", m.room, m.identity);
    const wrongKey = await postWebhook(service.url, body, {
      apiKey: API_KEY,
      apiSecret: "x".repeat(40),
    });
    assert.equal(wrongKey.status, 401);
    await wrongKey.body?.cancel();
    const wrongIssuer = await postWebhook(service.url, body, {
      apiKey: "other",
      apiSecret: API_SECRET,
    });
    assert.equal(wrongIssuer.status, 401);
    await wrongIssuer.body?.cancel();
    const { signWebhook } = await import("../_fakes/webhook.ts");
    const otherBody = webhookBody("participant_left", m.room, m.identity);
    const mismatched = await postWebhook(service.url, body, {
      ...KEYS,
      authorization: await signWebhook(otherBody, KEYS),
    });
    assert.equal(mismatched.status, 401);
    await mismatched.body?.cancel();
    const unsigned = await fetch(`${service.url}/sfu_webhook`, {
      method: "POST",
      body,
    });
    assert.equal(unsigned.status, 401);
    await unsigned.body?.cancel();
  },
});

Deno.test({
  name:
    "/sfu_webhook answers 400 to a signed body that is not an event, 200 to other events",
  ...sanitizers,
  async fn() {
    const notJson = await postWebhook(service.url, "{not json", KEYS);
    assert.equal(notJson.status, 400);
    await notJson.body?.cancel();
    const other = await postWebhook(
      service.url,
      webhookBody("room_started", "r", "i"),
      KEYS,
    );
    assert.equal(other.status, 200);
    await other.body?.cancel();
    const noJob = await postWebhook(
      service.url,
      webhookBody("participant_joined", "r", "i"),
      KEYS,
    );
    assert.equal(noJob.status, 200);
    await noJob.body?.cancel();
    const get = await fetch(`${service.url}/sfu_webhook`);
    assert.equal(get.status, 405);
    await get.body?.cancel();
  },
});

Deno.test({
  name: "a missed webhook is caught by the periodic presence check",
  ...sanitizers,
  async fn() {
    const checked = await startService(
      world.env({ LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS: "1" }),
    );
    try {
      const m = member(3000);
      world.sfu.addParticipant(m.room, m.identity);
      const { status } = await checked.post("/delegate_delayed_leave", m.body);
      assert.equal(status, 200);
      await world.hs.waitFor(() => restarts(m).length >= 1, 1_500);
      // The participant vanishes and the SFU's webhook never arrives.
      world.sfu.removeParticipant(m.room, m.identity);
      await world.hs.waitFor(() => sends(m).length === 1, 3_000);
    } finally {
      await checked.stop();
    }
  },
});

Deno.test({
  name: "SIGTERM stops jobs without sending their leave",
  ...sanitizers,
  async fn() {
    const other = await startService(world.env());
    const m = member(1500);
    const { status } = await other.post("/delegate_delayed_leave", m.body);
    assert.equal(status, 200);
    const exit = await other.stop("SIGTERM");
    assert.equal(exit.code, 0);
    await sleep(2_000);
    assert.equal(sends(m).length, 0);
  },
});

Deno.test({
  name:
    "new jobs beyond LIVEKIT_MAX_JOBS are refused with 503; replacing one is not",
  ...sanitizers,
  async fn() {
    const capped = await startService(world.env({ LIVEKIT_MAX_JOBS: "2" }));
    try {
      const [a, b, c] = [member(60_000), member(60_000), member(60_000)];
      for (const m of [a, b]) {
        assert.equal(
          (await capped.post("/delegate_delayed_leave", m.body)).status,
          200,
        );
      }
      const refused = await capped.fetch("/delegate_delayed_leave", {
        method: "POST",
        body: JSON.stringify(c.body),
      });
      assert.equal(refused.status, 503);
      assert.equal((await refused.json()).errcode, "M_UNKNOWN");
      assert.equal(refused.headers.get("retry-after"), "60");
      // The same participant handing over a new delayed event replaces its job.
      const replacement = structuredClone(a.body);
      replacement.delay_id = `${a.delayId}-2`;
      assert.equal(
        (await capped.post("/delegate_delayed_leave", replacement)).status,
        200,
      );
    } finally {
      await capped.stop();
    }
  },
});
