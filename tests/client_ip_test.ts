/** @module Unit tests of client IP resolution behind trusted proxies. */

import assert from "node:assert/strict";
import { ClientIpResolver, inCidr, parseCidr } from "../lib/client_ip.ts";

Deno.test("parseCidr() accepts IPs and ranges of both families and refuses the rest", () => {
  assert.deepEqual(parseCidr("10.0.0.0/8"), {
    family: 4,
    bits: 10n,
    prefix: 8,
  });
  assert.equal(parseCidr("::1")?.prefix, 128);
  assert.equal(parseCidr("fd00::/8")?.family, 6);
  for (const bad of ["example.com", "10.0.0.0/33", "::/129", "1.2.3.4/x", ""]) {
    assert.equal(parseCidr(bad), undefined, bad);
  }
});

Deno.test("inCidr() matches IPv4, IPv4-mapped IPv6 and IPv6 ranges", () => {
  assert.ok(inCidr("10.1.2.3", parseCidr("10.0.0.0/8")!));
  assert.ok(!inCidr("11.1.2.3", parseCidr("10.0.0.0/8")!));
  assert.ok(inCidr("::ffff:10.1.2.3", parseCidr("10.0.0.0/8")!));
  assert.ok(inCidr("fd12:3456::1", parseCidr("fd00::/8")!));
  assert.ok(!inCidr("fe80::1", parseCidr("fd00::/8")!));
  assert.ok(inCidr("::1", parseCidr("::1")!));
  assert.ok(!inCidr("10.1.2.3", parseCidr("::/0")!), "families do not mix");
});

Deno.test("ClientIpResolver ignores X-Forwarded-For from an untrusted peer", () => {
  const resolver = new ClientIpResolver(["10.0.0.0/8"]);
  assert.equal(resolver.resolve("203.0.113.9", "1.2.3.4"), "203.0.113.9");
});

Deno.test("ClientIpResolver takes the last untrusted hop behind trusted proxies", () => {
  const resolver = new ClientIpResolver(["10.0.0.0/8"]);
  assert.equal(
    resolver.resolve("10.0.0.1", "6.6.6.6, 198.51.100.7, 10.0.0.2"),
    "198.51.100.7",
  );
  assert.equal(resolver.resolve("10.0.0.1", null), "10.0.0.1");
  assert.equal(resolver.resolve("10.0.0.1", "not-an-ip"), "10.0.0.1");
});
