/** @module Self-test of the fake SFU: Twirp with binary protobuf and jose-checked tokens. */

import assert from "node:assert/strict";
import {
  CreateRoomRequest,
  ParticipantInfo,
  ParticipantInfo_State,
  Room,
  RoomParticipantIdentity,
} from "@livekit/protocol";
import { SignJWT } from "jose";
import { type FakeSfu, startFakeSfu } from "../_fakes/sfu.ts";

const KEY = "test-key";
const SECRET = "test-secret-that-is-long-enough-for-hs256";

/** A LiveKit-style access token with the given `video` grant. */
async function token(
  video: Record<string, unknown>,
  opts: { key?: string; secret?: string } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return await new SignJWT({ video })
    .setProtectedHeader({ alg: "HS256" })
    .setIssuer(opts.key ?? KEY)
    .setNotBefore(now)
    .setExpirationTime(now + 60)
    .sign(new TextEncoder().encode(opts.secret ?? SECRET));
}

/** POSTs a Twirp RoomService call and returns status, content type, bytes. */
async function twirp(
  sfu: FakeSfu,
  method: string,
  body: Uint8Array,
  headers: Record<string, string>,
): Promise<{ status: number; type: string | null; bytes: Uint8Array }> {
  const res = await fetch(
    `${sfu.httpUrl}/twirp/livekit.RoomService/${method}`,
    {
      method: "POST",
      headers: { "content-type": "application/protobuf", ...headers },
      body: body as Uint8Array<ArrayBuffer>,
    },
  );
  return {
    status: res.status,
    type: res.headers.get("content-type"),
    bytes: new Uint8Array(await res.arrayBuffer()),
  };
}

function json(bytes: Uint8Array): unknown {
  return JSON.parse(new TextDecoder().decode(bytes));
}

/** Runs `fn` with a fresh fake SFU, closed afterwards. */
async function withSfu(fn: (sfu: FakeSfu) => Promise<void>): Promise<void> {
  const sfu = await startFakeSfu({ apiKey: KEY, apiSecret: SECRET });
  try {
    await fn(sfu);
  } finally {
    await sfu.close();
  }
}

const createBody = new CreateRoomRequest({
  name: "hrQ0l3fv1RI0sCBUn3Nu59Bu/b3f7hWXbMLLfFMLNOY",
  emptyTimeout: 300,
  departureTimeout: 20,
}).toBinary();

Deno.test("sfu CreateRoom decodes the request and answers a binary Room", async () => {
  await withSfu(async (sfu) => {
    assert.equal(sfu.url, `ws://127.0.0.1:${sfu.port}`);
    assert.equal(sfu.httpUrl, `http://127.0.0.1:${sfu.port}`);
    const res = await twirp(sfu, "CreateRoom", createBody, {
      authorization: `Bearer ${await token({ roomCreate: true })}`,
    });
    assert.equal(res.status, 200);
    assert.equal(res.type, "application/protobuf");
    const room = Room.fromBinary(res.bytes);
    assert.equal(room.name, "hrQ0l3fv1RI0sCBUn3Nu59Bu/b3f7hWXbMLLfFMLNOY");
    assert.equal(room.sid, "RM_fake");
    assert.equal(room.emptyTimeout, 300);
    assert.equal(room.departureTimeout, 20);
    assert.equal(sfu.createdRooms.length, 1);
    assert.equal(sfu.createdRooms[0]?.emptyTimeout, 300);
    assert.equal(sfu.createdRooms[0]?.maxParticipants, 0);
    assert.ok(sfu.rooms.has("hrQ0l3fv1RI0sCBUn3Nu59Bu/b3f7hWXbMLLfFMLNOY"));
    assert.equal(sfu.claims[0]?.iss, KEY);
    assert.deepEqual(sfu.requests, [{
      method: "POST",
      path: "/twirp/livekit.RoomService/CreateRoom",
      contentType: "application/protobuf",
    }]);
  });
});

Deno.test("sfu CreateRoom answers 401 unauthenticated to a missing or bad token", async () => {
  await withSfu(async (sfu) => {
    const cases: Record<string, string>[] = [
      {},
      { authorization: await token({ roomCreate: true }) }, // no "Bearer "
      {
        authorization: `Bearer ${await token({ roomCreate: true }, {
          secret: "other-secret",
        })}`,
      },
      {
        authorization: `Bearer ${await token({ roomCreate: true }, {
          key: "other-key",
        })}`,
      },
      { authorization: `Bearer ${await token({ roomJoin: true })}` }, // no roomCreate grant
    ];
    for (const headers of cases) {
      const res = await twirp(sfu, "CreateRoom", createBody, headers);
      assert.equal(res.status, 401, JSON.stringify(headers));
      assert.equal(
        (json(res.bytes) as { code: string }).code,
        "unauthenticated",
      );
    }
    assert.equal(sfu.createdRooms.length, 0);
  });
});

Deno.test("sfu answers 400 malformed to a body that is not protobuf", async () => {
  await withSfu(async (sfu) => {
    const auth = `Bearer ${await token({ roomCreate: true })}`;
    const res = await fetch(
      `${sfu.httpUrl}/twirp/livekit.RoomService/CreateRoom`,
      {
        method: "POST",
        headers: { "content-type": "application/json", authorization: auth },
        body: JSON.stringify({ name: "r" }),
      },
    );
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), {
      code: "malformed",
      msg: "unexpected Content-Type: application/json",
    });
    const garbage = await twirp(
      sfu,
      "CreateRoom",
      new Uint8Array([0xff, 0xff, 0xff]),
      {
        authorization: auth,
      },
    );
    assert.equal(garbage.status, 400);
    assert.equal((json(garbage.bytes) as { code: string }).code, "malformed");
    assert.equal(sfu.requests[0]?.contentType, "application/json");
  });
});

Deno.test("sfu GetParticipant finds a present participant and records the lookup", async () => {
  await withSfu(async (sfu) => {
    sfu.addParticipant("room-1", "ident-1");
    const body = new RoomParticipantIdentity({
      room: "room-1",
      identity: "ident-1",
    }).toBinary();
    const res = await twirp(sfu, "GetParticipant", body, {
      authorization: `Bearer ${await token({
        roomAdmin: true,
        room: "room-1",
      })}`,
    });
    assert.equal(res.status, 200);
    const info = ParticipantInfo.fromBinary(res.bytes);
    assert.equal(info.identity, "ident-1");
    assert.equal(info.sid, "PA_fake");
    assert.equal(info.state, ParticipantInfo_State.ACTIVE);
    assert.equal(sfu.lookups.length, 1);
    assert.equal(sfu.lookups[0]?.room, "room-1");
    assert.equal(sfu.lookups[0]?.identity, "ident-1");
  });
});

Deno.test("sfu GetParticipant answers 404 not_found once the participant is gone", async () => {
  await withSfu(async (sfu) => {
    sfu.addParticipant("room-1", "ident-1");
    sfu.removeParticipant("room-1", "ident-1");
    const body = new RoomParticipantIdentity({
      room: "room-1",
      identity: "ident-1",
    }).toBinary();
    const res = await twirp(sfu, "GetParticipant", body, {
      authorization: `Bearer ${await token({
        roomAdmin: true,
        room: "room-1",
      })}`,
    });
    assert.equal(res.status, 404);
    assert.deepEqual(json(res.bytes), {
      code: "not_found",
      msg: "participant not found",
    });
  });
});

Deno.test("sfu GetParticipant needs roomAdmin for the very room asked about", async () => {
  await withSfu(async (sfu) => {
    sfu.addParticipant("room-1", "ident-1");
    const body = new RoomParticipantIdentity({
      room: "room-1",
      identity: "ident-1",
    }).toBinary();
    for (
      const video of [{ roomAdmin: true, room: "room-2" }, { room: "room-1" }]
    ) {
      const res = await twirp(sfu, "GetParticipant", body, {
        authorization: `Bearer ${await token(video)}`,
      });
      assert.equal(res.status, 401);
      assert.equal(
        (json(res.bytes) as { code: string }).code,
        "unauthenticated",
      );
    }
    // Refused lookups are still recorded: the service did ask.
    assert.equal(sfu.lookups.length, 2);
  });
});

Deno.test("sfu answers 503 unavailable to everything while down", async () => {
  await withSfu(async (sfu) => {
    sfu.down = true;
    const res = await twirp(sfu, "CreateRoom", createBody, {
      authorization: `Bearer ${await token({ roomCreate: true })}`,
    });
    assert.equal(res.status, 503);
    assert.deepEqual(json(res.bytes), { code: "unavailable", msg: "down" });
    assert.equal(sfu.createdRooms.length, 0);
    assert.equal(sfu.requests.length, 1);
    sfu.down = false;
    const again = await twirp(sfu, "CreateRoom", createBody, {
      authorization: `Bearer ${await token({ roomCreate: true })}`,
    });
    assert.equal(again.status, 200);
  });
});

Deno.test("sfu answers 404 bad_route to an unknown method", async () => {
  await withSfu(async (sfu) => {
    const res = await twirp(sfu, "DeleteRoom", new Uint8Array(), {});
    assert.equal(res.status, 404);
    assert.equal((json(res.bytes) as { code: string }).code, "bad_route");
  });
});
