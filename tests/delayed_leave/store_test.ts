/** @module Unit tests of the reference's Redis record format (SPEC 12). */

import assert from "node:assert/strict";
import {
  decodeRecord,
  encodeRecord,
  jobKey,
  parseRfc3339,
} from "../../lib/delayed_leave/store.ts";

/** A value as the reference writes it: Go field names, nanoseconds, RFC 3339 with nanoseconds. */
const REFERENCE_VALUE =
  '{"Params":{"DelayId":"syd_abc","DelayTimeout":8000000000,"ServerName":"example.com",' +
  '"LiveKitRoom":"hrQ0l3fv1RI0sCBUn3Nu59Bu/b3f7hWXbMLLfFMLNOY","LiveKitIdentity":"vYVt8NUMTb0rAawkFqilcAtxKgY26U3Ab7R9INviNnU"},' +
  '"RestartedAt":"2026-11-22T10:00:00.123456789Z"}';

Deno.test("decodeRecord() reads a record in the reference's format", () => {
  assert.deepEqual(decodeRecord(REFERENCE_VALUE), {
    delayId: "syd_abc",
    delayTimeoutMs: 8000,
    serverName: "example.com",
    room: "hrQ0l3fv1RI0sCBUn3Nu59Bu/b3f7hWXbMLLfFMLNOY",
    identity: "vYVt8NUMTb0rAawkFqilcAtxKgY26U3Ab7R9INviNnU",
    restartedAt: Date.parse("2026-11-22T10:00:00.123Z"),
  });
});

Deno.test("encodeRecord() writes Go's field names, nanoseconds and an RFC 3339 time", () => {
  const record = decodeRecord(REFERENCE_VALUE);
  const value = JSON.parse(encodeRecord(record));
  assert.deepEqual(value, {
    Params: {
      DelayId: "syd_abc",
      DelayTimeout: 8_000_000_000,
      ServerName: "example.com",
      LiveKitRoom: record.room,
      LiveKitIdentity: record.identity,
    },
    RestartedAt: "2026-11-22T10:00:00.123Z",
  });
  assert.deepEqual(decodeRecord(encodeRecord(record)), record);
});

Deno.test("jobKey() is the compact JSON pair the reference uses as the hash field", () => {
  assert.equal(jobKey("room", "id"), '["room","id"]');
  assert.equal(jobKey("<r>", "&"), '["\\u003cr\\u003e","\\u0026"]');
});

Deno.test("parseRfc3339() honours offsets and any number of fractional digits", () => {
  assert.equal(
    parseRfc3339("2026-11-22T11:00:00.5+01:00"),
    Date.parse("2026-11-22T10:00:00.500Z"),
  );
  assert.equal(
    parseRfc3339("2026-11-22T10:00:00Z"),
    Date.parse("2026-11-22T10:00:00Z"),
  );
  assert.throws(() => parseRfc3339("yesterday"), /RFC 3339/);
  assert.throws(() => parseRfc3339(5), /RFC 3339/);
});

for (
  const [what, value] of [
    ["not JSON", "{"],
    ["no Params", '{"RestartedAt":"2026-11-22T10:00:00Z"}'],
    ["an empty DelayId", REFERENCE_VALUE.replace('"syd_abc"', '""')],
    ["a fractional DelayTimeout", REFERENCE_VALUE.replace("8000000000", "1.5")],
    [
      "a bad RestartedAt",
      REFERENCE_VALUE.replace("2026-11-22T10:00:00.123456789Z", "soon"),
    ],
  ]
) {
  Deno.test(`decodeRecord() refuses a value with ${what}`, () => {
    assert.throws(() => decodeRecord(value!));
  });
}
