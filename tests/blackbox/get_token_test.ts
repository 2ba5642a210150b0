/** @module Black-box tests of /get_token and /sfu/get against the real process (SPEC 2-4, 7, 10). */

import assert from "node:assert/strict";
import { jwtVerify } from "jose";
import {
  API_KEY,
  API_SECRET,
  expectedHash,
  type ServiceProcess,
  startService,
} from "../_utils.ts";
import { startWorld, type World } from "../_world.ts";

let world: World;
let service: ServiceProcess;

Deno.test.beforeAll(async () => {
  world = await startWorld();
  service = await startService(world.env());
});

Deno.test.afterAll(async () => {
  await service.stop();
  await world.close();
});

async function verifyJwt(jwt: string) {
  const { payload, protectedHeader } = await jwtVerify(
    jwt,
    new TextEncoder().encode(API_SECRET),
    { issuer: API_KEY, algorithms: ["HS256"] },
  );
  return { payload, protectedHeader };
}

const CORS = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "POST",
  "access-control-allow-headers":
    "Accept, Content-Type, Content-Length, Accept-Encoding, X-CSRF-Token",
  "content-type": "application/json",
};

function assertCors(response: Response): void {
  for (const [name, value] of Object.entries(CORS)) {
    assert.equal(response.headers.get(name), value, name);
  }
}

const sanitizers = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "/get_token gives a full-access user a token and creates the room",
  ...sanitizers,
  async fn() {
    const body = world.tokenRequest({ roomId: "!full:example.com" });
    const response = await service.fetch("/get_token", {
      method: "POST",
      body: JSON.stringify(body),
    });
    assert.equal(response.status, 200);
    assertCors(response);
    const answer = await response.json();
    assert.equal(answer.url, world.sfu.url);
    const { payload, protectedHeader } = await verifyJwt(answer.jwt);
    const room = expectedHash(["!full:example.com", "m.call#"]);
    const identity = expectedHash([
      `@alice:${world.hsName}`,
      "DEVICE",
      "member-1",
    ]);
    assert.equal(protectedHeader.alg, "HS256");
    assert.equal(payload.sub, identity);
    assert.deepEqual(payload.video, {
      room,
      roomJoin: true,
      canPublish: true,
      canSubscribe: true,
      canUpdateOwnMetadata: true,
    });
    assert.equal(payload.exp! - payload.nbf!, 3600);
    assert.ok(Math.abs(payload.nbf! - Date.now() / 1000) < 10);
    const created = world.sfu.rooms.get(room);
    assert.ok(created, "room created on the SFU");
    assert.equal(created.emptyTimeout, 300);
    assert.equal(created.departureTimeout, 20);
    assert.equal(created.maxParticipants, 0);
    assert.ok(
      world.sfu.requests.some((r) =>
        r.path.endsWith("/CreateRoom") &&
        r.contentType === "application/protobuf"
      ),
    );
  },
});

Deno.test({
  name: "/get_token gives a restricted user a token but creates no room",
  ...sanitizers,
  async fn() {
    const before = world.sfu.createdRooms.length;
    const body = world.tokenRequest({
      restricted: true,
      roomId: "!restricted:example.com",
    });
    const { status, body: answer } = await service.post("/get_token", body);
    assert.equal(status, 200);
    const { payload } = await verifyJwt(answer.jwt as string);
    assert.equal(
      payload.sub,
      expectedHash([`@alice:${world.otherName}`, "DEVICE", "member-1"]),
    );
    assert.equal(world.sfu.createdRooms.length, before);
  },
});

Deno.test({
  name: "/get_token reads field names in any case, as the Go reference does",
  ...sanitizers,
  async fn() {
    const body = world.tokenRequest({
      restricted: true,
      roomId: "!any-case:example.com",
    });
    const token = body.openid_token as Record<string, unknown>;
    const member = body.member as Record<string, unknown>;
    const shouting = {
      ROOM_ID: body.room_id,
      Slot_Id: body.slot_id,
      OpenID_Token: {
        Access_Token: token.access_token,
        TOKEN_TYPE: token.token_type,
        matrix_SERVER_name: token.matrix_server_name,
        Expires_In: token.expires_in,
      },
      Member: {
        ID: member.id,
        Claimed_User_ID: member.claimed_user_id,
        CLAIMED_DEVICE_ID: member.claimed_device_id,
      },
    };
    const { status, body: answer } = await service.post("/get_token", shouting);
    assert.equal(status, 200);
    const { payload } = await verifyJwt(answer.jwt as string);
    assert.equal(
      payload.sub,
      expectedHash([`@alice:${world.otherName}`, "DEVICE", "member-1"]),
    );
    assert.equal(
      (payload.video as { room: string }).room,
      expectedHash(["!any-case:example.com", "m.call#"]),
    );
  },
});

Deno.test({
  name: "/get_token answers 401 for a token the homeserver does not know",
  ...sanitizers,
  async fn() {
    const body = world.tokenRequest();
    (body.openid_token as Record<string, unknown>).access_token =
      "unknown-token";
    const response = await service.fetch("/get_token", {
      method: "POST",
      body: JSON.stringify(body),
    });
    assert.equal(response.status, 401);
    assertCors(response);
    assert.deepEqual(await response.json(), {
      errcode: "M_UNAUTHORIZED",
      error: "The request could not be authorised.",
    });
    assert.ok(!service.logs.includes("unknown-token"), "token never logged");
  },
});

Deno.test({
  name: "/get_token answers 401 when the claimed user is not the verified one",
  ...sanitizers,
  async fn() {
    const body = world.tokenRequest();
    (body.member as Record<string, unknown>).claimed_user_id =
      `@mallory:${world.hsName}`;
    const { status, body: answer } = await service.post("/get_token", body);
    assert.equal(status, 401);
    assert.equal(answer.errcode, "M_UNAUTHORIZED");
  },
});

Deno.test({
  name:
    "/get_token answers 401 when a homeserver vouches for a user of another server",
  ...sanitizers,
  async fn() {
    // `other` claims one of `hs`'s users: it must not be believed.
    const body = world.tokenRequest({ restricted: true });
    const token = (body.openid_token as Record<string, string>).access_token!;
    world.other.tokens.set(token, `@alice:${world.hsName}`);
    (body.member as Record<string, unknown>).claimed_user_id =
      `@alice:${world.hsName}`;
    const { status, body: answer } = await service.post("/get_token", body);
    assert.equal(status, 401);
    assert.equal(answer.errcode, "M_UNAUTHORIZED");
    await service.waitForLog(/a user of another server/);
  },
});

/** A request body taken apart freely, to make it wrong. */
// deno-lint-ignore no-explicit-any
type LooseBody = Record<string, any>;

/** Each field check of SPEC 3, in order: a 400 M_BAD_JSON and no call to the homeserver. */
const BAD_REQUESTS: [string, (b: LooseBody) => void][] = [
  ["room_id is empty", (b) => b.room_id = ""],
  ["slot_id is missing", (b) => delete b.slot_id],
  ["member.id is empty", (b) => b.member.id = ""],
  ["member.claimed_user_id is missing", (b) => delete b.member.claimed_user_id],
  ["member.claimed_device_id is empty", (b) => b.member.claimed_device_id = ""],
  ["member is missing", (b) => delete b.member],
  [
    "openid_token.access_token is empty",
    (b) => b.openid_token.access_token = "",
  ],
  [
    "openid_token.matrix_server_name is empty",
    (b) => b.openid_token.matrix_server_name = "",
  ],
  ["delay_id comes without delay_timeout", (b) => b.delay_id = "syd_abc"],
  ["delay_timeout comes without delay_id", (b) => b.delay_timeout = 5000],
  [
    "delay_timeout is not positive",
    (b) => {
      b.delay_id = "syd_abc";
      b.delay_timeout = -1;
    },
  ],
];

for (const [what, mutate] of BAD_REQUESTS) {
  Deno.test({
    name: `/get_token answers 400 M_BAD_JSON when ${what}`,
    ...sanitizers,
    async fn() {
      const body = world.tokenRequest();
      mutate(body);
      const calls = world.hs.requests.length;
      const response = await service.fetch("/get_token", {
        method: "POST",
        body: JSON.stringify(body),
      });
      assert.equal(response.status, 400);
      assertCors(response);
      const answer = await response.json();
      assert.equal(answer.errcode, "M_BAD_JSON");
      assert.equal(typeof answer.error, "string");
      assert.equal(world.hs.requests.length, calls, "no outgoing request");
    },
  });
}

const NOT_JSON: [string, string][] = [
  ["the body is not JSON", "{not json"],
  ["the body is empty", ""],
  ["the body is an array", "[]"],
  ["the body is a string", '"hello"'],
  ["room_id is a number", JSON.stringify({ room_id: 5 })],
  ["member is a string", JSON.stringify({ member: "alice" })],
  ["delay_timeout is a string", JSON.stringify({ delay_timeout: "5000" })],
  ["delay_timeout is fractional", JSON.stringify({ delay_timeout: 1.5 })],
  [
    "a top-level field is unknown",
    JSON.stringify({ room_id: "!r:x", extra: 1 }),
  ],
  [
    "a nested field is unknown",
    JSON.stringify({ openid_token: { access_token: "t", surprise: true } }),
  ],
];

for (const [what, text] of NOT_JSON) {
  Deno.test({
    name: `/get_token answers 400 M_NOT_JSON when ${what}`,
    ...sanitizers,
    async fn() {
      const calls = world.hs.requests.length;
      const response = await service.fetch("/get_token", {
        method: "POST",
        body: text,
      });
      assert.equal(response.status, 400);
      assertCors(response);
      assert.deepEqual(await response.json(), {
        errcode: "M_NOT_JSON",
        error: "Error reading request",
      });
      assert.equal(world.hs.requests.length, calls, "no outgoing request");
    },
  });
}

for (const route of ["/get_token", "/sfu/get", "/delegate_delayed_leave"]) {
  Deno.test({
    name: `${route} answers OPTIONS with 200, CORS headers and no body`,
    ...sanitizers,
    async fn() {
      const response = await service.fetch(route, { method: "OPTIONS" });
      assert.equal(response.status, 200);
      assertCors(response);
      assert.equal(await response.text(), "");
    },
  });

  for (const method of ["GET", "PUT", "DELETE"]) {
    Deno.test({
      name: `${route} answers ${method} with 405 and makes no outgoing request`,
      ...sanitizers,
      async fn() {
        const calls = world.hs.requests.length + world.sfu.requests.length;
        const response = await service.fetch(route, {
          method,
          ...(method === "GET"
            ? {}
            : { body: JSON.stringify(world.tokenRequest()) }),
        });
        assert.equal(response.status, 405);
        assertCors(response);
        await response.body?.cancel();
        assert.equal(
          world.hs.requests.length + world.sfu.requests.length,
          calls,
        );
      },
    });
  }
}

Deno.test({
  name:
    "/get_token answers 500 M_UNKNOWN to a full-access user when the SFU is down",
  ...sanitizers,
  async fn() {
    world.sfu.down = true;
    try {
      const { status, body } = await service.post(
        "/get_token",
        world.tokenRequest({ roomId: "!down:example.com" }),
      );
      assert.equal(status, 500);
      assert.equal(body.errcode, "M_UNKNOWN");
    } finally {
      world.sfu.down = false;
    }
  },
});

Deno.test({
  name: "/get_token still serves a restricted user while the SFU is down",
  ...sanitizers,
  async fn() {
    world.sfu.down = true;
    try {
      const { status } = await service.post(
        "/get_token",
        world.tokenRequest({ restricted: true }),
      );
      assert.equal(status, 200);
    } finally {
      world.sfu.down = false;
    }
  },
});

Deno.test({
  name:
    "/get_token refuses delay parameters from a restricted user with 400 M_BAD_JSON",
  ...sanitizers,
  async fn() {
    const { status, body } = await service.post(
      "/get_token",
      world.tokenRequest({
        restricted: true,
        delay: { id: "d1", timeoutMs: 5000 },
      }),
    );
    assert.equal(status, 400);
    assert.equal(body.errcode, "M_BAD_JSON");
  },
});

Deno.test({
  name:
    "/get_token refuses delay parameters when the CS API cannot be found, creating no room",
  ...sanitizers,
  async fn() {
    const saved = world.hs.wellKnownClient;
    world.hs.wellKnownClient = undefined;
    const before = world.sfu.createdRooms.length;
    try {
      const { status, body } = await service.post(
        "/get_token",
        world.tokenRequest({
          roomId: "!nocsapi:example.com",
          localpart: "nocsapi",
          delay: { id: "d2", timeoutMs: 5000 },
        }),
      );
      assert.equal(status, 400);
      assert.equal(body.errcode, "M_BAD_JSON");
      assert.equal(
        world.sfu.createdRooms.length,
        before,
        "no room left behind",
      );
    } finally {
      world.hs.wellKnownClient = saved;
    }
  },
});

function legacyRequest(world: World, restricted = false): LooseBody {
  const body = world.tokenRequest({
    restricted,
    roomId: "!legacy:example.com",
  });
  return {
    room: body.room_id,
    openid_token: body.openid_token,
    device_id: "LEGACYDEV",
  };
}

Deno.test({
  name:
    "/sfu/get gives a token with the legacy identity and room, and creates the room",
  ...sanitizers,
  async fn() {
    const response = await service.fetch("/sfu/get", {
      method: "POST",
      body: JSON.stringify(legacyRequest(world)),
    });
    assert.equal(response.status, 200);
    assertCors(response);
    const answer = await response.json();
    assert.equal(answer.url, world.sfu.url);
    const { payload } = await verifyJwt(answer.jwt);
    assert.equal(payload.sub, `@alice:${world.hsName}:LEGACYDEV`);
    const room = expectedHash(["!legacy:example.com", "m.call#ROOM"]);
    assert.equal((payload.video as Record<string, unknown>).room, room);
    assert.ok(world.sfu.rooms.has(room));
  },
});

Deno.test({
  name: "/sfu/get answers 400 M_BAD_JSON when room is empty",
  ...sanitizers,
  async fn() {
    const body = legacyRequest(world);
    body.room = "";
    const { status, body: answer } = await service.post("/sfu/get", body);
    assert.equal(status, 400);
    assert.equal(answer.errcode, "M_BAD_JSON");
  },
});

Deno.test({
  name: "/sfu/get answers 400 M_BAD_JSON when the OpenID server name is empty",
  ...sanitizers,
  async fn() {
    const body = legacyRequest(world);
    body.openid_token.matrix_server_name = "";
    const { status, body: answer } = await service.post("/sfu/get", body);
    assert.equal(status, 400);
    assert.equal(answer.errcode, "M_BAD_JSON");
  },
});

Deno.test({
  name: "/sfu/get answers 400 M_NOT_JSON for a /get_token-only field",
  ...sanitizers,
  async fn() {
    const body = legacyRequest(world);
    body.member = { id: "x" };
    const { status, body: answer } = await service.post("/sfu/get", body);
    assert.equal(status, 400);
    assert.equal(answer.errcode, "M_NOT_JSON");
  },
});

Deno.test({
  name: "/sfu/get answers 401 for an unknown token",
  ...sanitizers,
  async fn() {
    const body = legacyRequest(world);
    body.openid_token.access_token = "nobody-knows-me";
    const { status, body: answer } = await service.post("/sfu/get", body);
    assert.equal(status, 401);
    assert.equal(answer.errcode, "M_UNAUTHORIZED");
  },
});

Deno.test({
  name:
    "/healthz answers GET and HEAD with 200 and an empty body, other methods with 405",
  ...sanitizers,
  async fn() {
    for (const method of ["GET", "HEAD"]) {
      const response = await service.fetch("/healthz", { method });
      assert.equal(response.status, 200);
      assert.equal(await response.text(), "");
    }
    const post = await service.fetch("/healthz", { method: "POST" });
    assert.equal(post.status, 405);
    await post.body?.cancel();
  },
});

Deno.test({
  name: "an unknown path answers 404",
  ...sanitizers,
  async fn() {
    const response = await service.fetch("/nope");
    assert.equal(response.status, 404);
    await response.body?.cancel();
  },
});

Deno.test({
  name: "no log line holds an access token or the API secret",
  ...sanitizers,
  fn() {
    assert.ok(!service.logs.includes(API_SECRET));
    assert.ok(!/token-\d+-/.test(service.logs));
  },
});
