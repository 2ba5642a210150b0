/** @module Unit tests of identity and room hashing (SPEC 7 vectors) and token signing. */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { jwtVerify } from "jose";
import {
  goJsonStringArray,
  hashList,
  participantIdentity,
  roomName,
  TokenSigner,
} from "../../lib/livekit/token.ts";

Deno.test("roomName() matches the SPEC vector for a MatrixRTC slot", async () => {
  assert.equal(
    await roomName("!room:example.com", "m.call#"),
    "hrQ0l3fv1RI0sCBUn3Nu59Bu/b3f7hWXbMLLfFMLNOY",
  );
});

Deno.test("roomName() matches the SPEC vector for the legacy slot", async () => {
  assert.equal(
    await roomName("!room:example.com", "m.call#ROOM"),
    "krj2dgxw2K6EOm9he4GfQJ6JsSVWfJ8a7BkyjZcSmxs",
  );
});

Deno.test("participantIdentity() matches the SPEC vector", async () => {
  assert.equal(
    await participantIdentity("@alice:example.com", "DEVICE", "member-1"),
    "vYVt8NUMTb0rAawkFqilcAtxKgY26U3Ab7R9INviNnU",
  );
});

Deno.test("goJsonStringArray() escapes <, >, &, U+2028 and U+2029 like Go", () => {
  assert.equal(
    goJsonStringArray(["<a&b>", "\u2028\u2029"]),
    '["\\u003ca\\u0026b\\u003e","\\u2028\\u2029"]',
  );
});

Deno.test("goJsonStringArray() leaves non-ASCII as UTF-8 and escapes quotes and controls", () => {
  assert.equal(
    goJsonStringArray(['é€😀"\\', "\n\t\u0001"]),
    '["é€😀\\"\\\\","\\n\\t\\u0001"]',
  );
});

Deno.test("roomName() hashes a room ID with <, & and non-ASCII as Go's encoder would", async () => {
  // The bytes Go's json.Marshal produces for ["!<Räum>&:例え.com","m.call#"].
  const goBytes = '["!\\u003cRäum\\u003e\\u0026:例え.com","m.call#"]';
  const expected = createHash("sha256").update(goBytes, "utf8").digest("base64")
    .replace(/=+$/, "");
  assert.equal(await roomName("!<Räum>&:例え.com", "m.call#"), expected);
});

Deno.test("hashList() output is unpadded standard base64", async () => {
  const hash = await hashList(["x"]);
  assert.equal(hash.length, 43);
  assert.match(hash, /^[A-Za-z0-9+/]+$/);
});

Deno.test("TokenSigner.participantToken() signs the SPEC 7 claims, checked with jose", async () => {
  const now = 1_800_000_000_000;
  const signer = new TokenSigner(
    "key",
    "a-secret-that-is-32-characters!!",
    () => now,
  );
  const jwt = await signer.participantToken("identity-1", "room-1");
  const { payload, protectedHeader } = await jwtVerify(
    jwt,
    new TextEncoder().encode("a-secret-that-is-32-characters!!"),
    { currentDate: new Date(now) },
  );
  assert.equal(protectedHeader.alg, "HS256");
  assert.deepEqual(payload, {
    iss: "key",
    sub: "identity-1",
    nbf: now / 1000,
    exp: now / 1000 + 3600,
    video: {
      room: "room-1",
      roomJoin: true,
      canPublish: true,
      canSubscribe: true,
      canUpdateOwnMetadata: true,
    },
  });
});

Deno.test("TokenSigner.sign() leaves out sub for a service token", async () => {
  const signer = new TokenSigner("key", "a-secret-that-is-32-characters!!");
  const jwt = await signer.sign("", { roomCreate: true }, 60);
  const { payload } = await jwtVerify(
    jwt,
    new TextEncoder().encode("a-secret-that-is-32-characters!!"),
  );
  assert.equal(payload.sub, undefined);
  assert.deepEqual(payload.video, { roomCreate: true });
});
