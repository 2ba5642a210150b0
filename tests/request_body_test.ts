/** @module Unit tests of request decoding with the Go decoder's semantics. */

import assert from "node:assert/strict";
import {
  decodeBody,
  LEGACY_TOKEN_REQUEST,
  type LegacyTokenRequest,
  TOKEN_REQUEST,
  type TokenRequest,
} from "../lib/request_body.ts";
import { MatrixError } from "../lib/errors.ts";

const decode = (body: unknown) =>
  decodeBody<TokenRequest>(JSON.stringify(body), TOKEN_REQUEST);

function assertNotJson(text: string): void {
  assert.throws(
    () => decodeBody(text, TOKEN_REQUEST),
    (err) =>
      err instanceof MatrixError && err.status === 400 &&
      err.errcode === "M_NOT_JSON",
  );
}

Deno.test("decodeBody() fills missing fields with zero values at every depth", () => {
  assert.deepEqual(decode({ room_id: "!r:x" }), {
    room_id: "!r:x",
    slot_id: "",
    openid_token: {
      access_token: "",
      token_type: "",
      matrix_server_name: "",
      expires_in: 0,
    },
    member: { id: "", claimed_user_id: "", claimed_device_id: "" },
    delay_id: "",
    delay_timeout: 0,
    delay_cs_api_url: "",
  });
});

Deno.test("decodeBody() matches keys to fields case-insensitively, as Go does", () => {
  const request = decode({
    Room_ID: "!r:x",
    SLOT_ID: "m.call#",
    OpenID_Token: { ACCESS_TOKEN: "t", Matrix_Server_Name: "hs" },
    member: { ID: "m", Claimed_User_Id: "@u:hs", claimed_DEVICE_id: "D" },
    Delay_Timeout: 5000,
  });
  assert.equal(request.room_id, "!r:x");
  assert.equal(request.slot_id, "m.call#");
  assert.equal(request.openid_token.access_token, "t");
  assert.equal(request.openid_token.matrix_server_name, "hs");
  assert.deepEqual(request.member, {
    id: "m",
    claimed_user_id: "@u:hs",
    claimed_device_id: "D",
  });
  assert.equal(request.delay_timeout, 5000);
});

Deno.test("decodeBody() folds the Kelvin sign, long s and Turkish i as Go does", () => {
  // U+212A folds to k, U+017F to s, U+0130 and U+0131 to i.
  const request = decode({
    "\u017flot_id": "m.call#",
    "member": { "\u0130d": "m", "claimed_device_\u0131d": "D" },
    "openid_token": { "access_to\u212aen": "t" },
  });
  assert.equal(request.slot_id, "m.call#");
  assert.equal(request.member.id, "m");
  assert.equal(request.member.claimed_device_id, "D");
  assert.equal(request.openid_token.access_token, "t");
});

Deno.test("decodeBody() refuses keys that only look like fields", () => {
  assertNotJson(JSON.stringify({ "room-id": "!r:x" }));
  assertNotJson(JSON.stringify({ "roomid": "!r:x" }));
  assertNotJson(JSON.stringify({ "room_id ": "!r:x" }));
  // Fullwidth letters fold to themselves, not to ASCII.
  assertNotJson(JSON.stringify({ "\uff52oom_id": "!r:x" }));
  assertNotJson(JSON.stringify({ member: { "I\u0307d": "m" } }));
});

Deno.test("decodeBody() lets a later key overwrite an earlier one of the same field", () => {
  const request = decode({ room_id: "!first:x", ROOM_ID: "!second:x" });
  assert.equal(request.room_id, "!second:x");
});

Deno.test("decodeBody() merges two objects given for one field, as Go decodes into the same struct", () => {
  const request = decode({
    member: { id: "m", claimed_user_id: "@u:hs" },
    MEMBER: { claimed_device_id: "D", id: "m2" },
  });
  assert.deepEqual(request.member, {
    id: "m2",
    claimed_user_id: "@u:hs",
    claimed_device_id: "D",
  });
});

Deno.test("decodeBody() leaves a field as it was on null", () => {
  const request = decode({ room_id: "!r:x", Room_Id: null, member: null });
  assert.equal(request.room_id, "!r:x");
  assert.deepEqual(request.member, {
    id: "",
    claimed_user_id: "",
    claimed_device_id: "",
  });
});

Deno.test("decodeBody() refuses wrong types, fractions and unknown fields at any depth", () => {
  assertNotJson(JSON.stringify({ room_id: 5 }));
  assertNotJson(JSON.stringify({ ROOM_ID: 5 }));
  assertNotJson(JSON.stringify({ delay_timeout: 1.5 }));
  assertNotJson(JSON.stringify({ member: ["m"] }));
  assertNotJson(JSON.stringify({ openid_token: { access_token: "t", x: 1 } }));
  assertNotJson("[]");
  assertNotJson("{");
});

Deno.test("decodeBody() takes only integer literals in int64's range for integer fields, as Go's int", () => {
  for (
    const literal of [
      "1.0",
      "1e3",
      "1E3",
      "10e-1",
      "-1.5",
      "9223372036854775808",
    ]
  ) {
    assertNotJson(`{"delay_timeout": ${literal}}`);
    assertNotJson(`{"openid_token": {"expires_in": ${literal}}}`);
  }
  assert.equal(
    decodeBody<TokenRequest>('{"delay_timeout": -0}', TOKEN_REQUEST)
      .delay_timeout,
    0,
  );
  assert.equal(
    decodeBody<TokenRequest>(
      '{"delay_timeout": 9223372036854775807}',
      TOKEN_REQUEST,
    )
      .delay_timeout,
    2 ** 63,
  );
  assert.equal(
    decodeBody<TokenRequest>(
      '{"openid_token": {"expires_in": 3600}}',
      TOKEN_REQUEST,
    )
      .openid_token.expires_in,
    3600,
  );
});

Deno.test("decodeBody() leaves what follows the object unread, as Go's Decoder", () => {
  const roomOf = (text: string) =>
    decodeBody<TokenRequest>(text, TOKEN_REQUEST).room_id;
  assert.equal(roomOf('{"room_id": "!r:x"} and then some'), "!r:x");
  assert.equal(roomOf('\n\t {"room_id": "!r:x"}{"unknown": 1}'), "!r:x");
  assert.equal(roomOf('{"room_id": "}{"} ]'), "}{");
  assert.equal(roomOf('{"room_id": "a\\"}"}x'), 'a"}');
  assert.equal(
    decodeBody<TokenRequest>(
      '{"member": {"id": "m"}, "room_id": "!r:x"} {',
      TOKEN_REQUEST,
    ).member.id,
    "m",
  );
  assertNotJson('{"room_id": "!r:x"');
  assertNotJson('{"room_id": ["!r:x"}');
  assertNotJson('{"room_id": "!r:x"]');
  assertNotJson('x {"room_id": "!r:x"}');
});

Deno.test("decodeBody() keeps the legacy shape apart from the new one", () => {
  const legacy = decodeBody<LegacyTokenRequest>(
    JSON.stringify({ Room: "!r:x", Device_ID: "D" }),
    LEGACY_TOKEN_REQUEST,
  );
  assert.equal(legacy.room, "!r:x");
  assert.equal(legacy.device_id, "D");
  assert.throws(() =>
    decodeBody(JSON.stringify({ room_id: "!r:x" }), LEGACY_TOKEN_REQUEST)
  );
});
