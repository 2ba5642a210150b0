/** @module Self-test of the fake DNS server through Deno's own resolver. */

import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import type { Buffer } from "node:buffer";
// @ts-types="@types/dns-packet"
import dnsPacket from "dns-packet";
import { type FakeDns, startFakeDns } from "../_fakes/dns.ts";

/** Runs `fn` with a fresh fake DNS server, closed afterwards. */
async function withDns(fn: (dns: FakeDns) => Promise<void>): Promise<void> {
  const dns = await startFakeDns();
  try {
    await fn(dns);
  } finally {
    await dns.close();
  }
}

function via(dns: FakeDns): Deno.ResolveDnsOptions {
  return { nameServer: { ipAddr: "127.0.0.1", port: dns.port } };
}

Deno.test("dns answers SRV records through Deno.resolveDns", async () => {
  await withDns(async (dns) => {
    assert.equal(dns.nameServer, `127.0.0.1:${dns.port}`);
    dns.srv.set("_matrix-fed._tcp.example.test", [
      { target: "hs.example.test", port: 8443, priority: 5, weight: 7 },
      { target: "backup.example.test", port: 443 },
    ]);
    const records = await Deno.resolveDns(
      "_matrix-fed._tcp.example.test",
      "SRV",
      via(dns),
    );
    assert.deepEqual(
      records.map((r) => ({ ...r })).sort((x, y) => x.priority - y.priority),
      [
        { target: "hs.example.test.", port: 8443, priority: 5, weight: 7 },
        { target: "backup.example.test.", port: 443, priority: 10, weight: 0 },
      ],
    );
    assert.deepEqual(dns.queries, [{
      name: "_matrix-fed._tcp.example.test",
      type: "SRV",
    }]);
  });
});

Deno.test("dns answers A and AAAA records, matching names case-insensitively", async () => {
  await withDns(async (dns) => {
    dns.a.set("HS.Example.Test", ["127.0.0.1", "127.0.0.2"]);
    dns.aaaa.set("hs.example.test", ["::1"]);
    assert.deepEqual(
      (await Deno.resolveDns("hs.example.test", "A", via(dns))).sort(),
      ["127.0.0.1", "127.0.0.2"],
    );
    assert.deepEqual(
      await Deno.resolveDns("hs.example.test", "AAAA", via(dns)),
      ["::1"],
    );
  });
});

Deno.test("dns answers NXDOMAIN for an unknown name", async () => {
  await withDns(async (dns) => {
    await assert.rejects(
      Deno.resolveDns("nowhere.example.test", "A", via(dns)),
      Deno.errors.NotFound,
    );
    assert.deepEqual(dns.queries, [{
      name: "nowhere.example.test",
      type: "A",
    }]);
  });
});

Deno.test("dns answers no records for a known name without the asked type", async () => {
  await withDns(async (dns) => {
    dns.a.set("hs.example.test", ["127.0.0.1"]);
    await assert.rejects(
      Deno.resolveDns("hs.example.test", "SRV", via(dns)),
      Deno.errors.NotFound,
    );
    assert.deepEqual(dns.queries.map((q) => q.type), ["SRV"]);
  });
});

/** Sends one raw query with node:dgram and decodes the answer. */
async function rawQuery(
  dns: FakeDns,
  name: string,
  type: dnsPacket.RecordType,
): Promise<dnsPacket.DecodedPacket> {
  const socket = createSocket("udp4");
  try {
    const answer = new Promise<Buffer>((resolve) =>
      socket.once("message", (msg) => resolve(msg))
    );
    const query = dnsPacket.encode({
      type: "query",
      id: 4242,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type, name }],
    });
    socket.send(query, dns.port, "127.0.0.1");
    return dnsPacket.decode(await answer);
  } finally {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}

/** The RCODE: the low four bits of the flags word (RFC 1035 4.1.1). */
function rcode(packet: dnsPacket.DecodedPacket): number {
  return (packet.flags ?? 0) & 0xf;
}

Deno.test("dns tells NXDOMAIN from NOERROR with no answers on the wire", async () => {
  await withDns(async (dns) => {
    dns.srv.set("_matrix._tcp.example.test", [{ target: "hs", port: 1 }]);
    const unknown = await rawQuery(dns, "other.example.test", "SRV");
    assert.equal(unknown.id, 4242);
    assert.equal(rcode(unknown), 3); // NXDOMAIN
    const empty = await rawQuery(dns, "_matrix._tcp.example.test", "A");
    assert.equal(rcode(empty), 0); // NOERROR
    assert.equal(empty.answers?.length, 0);
    const found = await rawQuery(dns, "_matrix._tcp.example.test.", "SRV");
    assert.equal(rcode(found), 0);
    assert.equal(found.flag_rd, true);
    assert.deepEqual((found.answers?.[0] as dnsPacket.SrvAnswer).data, {
      target: "hs",
      port: 1,
      priority: 10,
      weight: 0,
    });
  });
});
