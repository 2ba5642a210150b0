/**
 * @module Black-box tests of Matrix server name resolution (SPEC 8): every
 * branch, seen from the homeserver's side (which address, which Host header,
 * which certificate name), through the real process and a fake DNS server.
 */

import assert from "node:assert/strict";
import { type FakeDns, startFakeDns } from "../_fakes/dns.ts";
import {
  type FakeHomeserver,
  startFakeHomeserver,
} from "../_fakes/homeserver.ts";
import { makeTestCa, type TestCa } from "../_fakes/tls.ts";
import { startFakeSfu } from "../_fakes/sfu.ts";
import {
  API_KEY,
  API_SECRET,
  IN_CI,
  type ServiceProcess,
  startService,
} from "../_utils.ts";

let ca: TestCa;
let dns: FakeDns;
/** The main homeserver on 127.0.0.1:<port>, with a certificate for many names. */
let hs: FakeHomeserver;
/** Well-known documents on <wkIp>:443 (port 443 is fixed by the spec). */
let wk: FakeHomeserver | undefined;
/** A homeserver on the default federation port 8448 of its own loopback address. */
let fallback: FakeHomeserver;
let service: ServiceProcess;
let closeSfu: () => Promise<void>;
let skipReason = "";

/** A loopback address of its own for each fixed-port server. */
const base = 2 + Math.floor(Math.random() * 200);
const wkIp = `127.0.${base}.10`;
const fallbackIp = `127.0.${base}.11`;

Deno.test.beforeAll(async () => {
  ca = await makeTestCa();
  dns = await startFakeDns();
  hs = await startFakeHomeserver({
    ca,
    names: ["hs.test", "deleg.test", "srv.test", "oldsrv.test", "both.test"],
  });
  fallback = await startFakeHomeserver({
    ca,
    names: ["fb.test", fallbackIp],
    hostname: fallbackIp,
    port: 8448,
  });
  try {
    wk = await startFakeHomeserver({
      ca,
      names: [
        "wkredirect.test",
        "wk.test",
        "wkshort.test",
        "wknostore.test",
        "wkdeleg.test",
        "wkip.test",
      ],
      hostname: wkIp,
      port: 443,
    });
  } catch (err) {
    skipReason = `cannot listen on ${wkIp}:443 (${(err as Error).message})`;
    if (IN_CI) throw err;
  }
  dns.a.set("hs.test", ["127.0.0.1"]);
  dns.a.set("fb.test", [fallbackIp]);
  for (
    const name of [
      "wkredirect.test",
      "wk.test",
      "wkshort.test",
      "wknostore.test",
      "wkdeleg.test",
      "wkip.test",
    ]
  ) {
    dns.a.set(name, [wkIp]);
  }
  const sfu = await startFakeSfu({ apiKey: API_KEY, apiSecret: API_SECRET });
  closeSfu = () => sfu.close();
  service = await startService({
    LIVEKIT_URL: sfu.url,
    LIVEKIT_KEY: API_KEY,
    LIVEKIT_SECRET: API_SECRET,
    LIVEKIT_FULL_ACCESS_HOMESERVERS: "nobody.test",
    LIVEKIT_DNS_SERVER: dns.nameServer,
    SSL_CERT_FILE: ca.caFile,
    LIVEKIT_LOG_LEVEL: "debug",
  });
});

Deno.test.afterAll(async () => {
  await service.stop();
  await Promise.all([
    hs.close(),
    wk?.close(),
    fallback.close(),
    dns.close(),
    closeSfu(),
  ]);
  await ca.cleanup();
});

/** Asks for a token as `@alice:<serverName>`, whose token `server` knows. */
async function exchange(
  serverName: string,
  server: FakeHomeserver,
): Promise<{ status: number; userinfo: { host: string }[] }> {
  const token = `tok-${crypto.randomUUID()}`;
  const userId = `@alice:${serverName}`;
  server.tokens.set(token, userId);
  const { status } = await service.post("/get_token", {
    room_id: "!room:example.com",
    slot_id: "m.call#",
    openid_token: { access_token: token, matrix_server_name: serverName },
    member: { id: "m", claimed_user_id: userId, claimed_device_id: "D" },
  });
  const userinfo = server.userinfoCalls().filter((r) =>
    r.search.includes(token)
  );
  return { status, userinfo };
}

const sanitizers = { sanitizeOps: false, sanitizeResources: false };

function test(name: string, fn: () => Promise<void>, needsWellKnown = false) {
  Deno.test({
    name,
    ...sanitizers,
    async fn() {
      if (needsWellKnown && wk === undefined) {
        console.log(`SKIPPED: ${name}: ${skipReason}`);
        return;
      }
      await fn();
    },
  });
}

test("an IP literal with a port is used as is, with the server name as Host", async () => {
  const name = `127.0.0.1:${hs.port}`;
  const { status, userinfo } = await exchange(name, hs);
  assert.equal(status, 200);
  assert.deepEqual(userinfo.map((r) => r.host), [name]);
});

test("an IP literal without a port goes to port 8448", async () => {
  const { status, userinfo } = await exchange(fallbackIp, fallback);
  assert.equal(status, 200);
  assert.deepEqual(userinfo.map((r) => r.host), [fallbackIp]);
});

test("a host name with an explicit port skips well-known and SRV", async () => {
  const name = `hs.test:${hs.port}`;
  const queries = dns.queries.length;
  const { status, userinfo } = await exchange(name, hs);
  assert.equal(status, 200);
  assert.deepEqual(userinfo.map((r) => r.host), [name]);
  assert.ok(
    dns.queries.slice(queries).every((q) => q.type !== "SRV"),
    "no SRV query for an explicit port",
  );
});

test("well-known delegation to a name with a port is followed", async () => {
  wk!.wellKnownServer = {
    status: 200,
    body: { "m.server": `hs.test:${hs.port}` },
  };
  const { status, userinfo } = await exchange("wkdeleg.test", hs);
  assert.equal(status, 200);
  assert.deepEqual(userinfo.map((r) => r.host), [`hs.test:${hs.port}`]);
}, true);

test("a redirected well-known document is followed", async () => {
  wk!.wellKnownServer = {
    status: 302,
    headers: {
      Location: `https://hs.test:${hs.port}/.well-known/matrix/server`,
    },
  };
  hs.wellKnownServer = {
    status: 200,
    body: { "m.server": `hs.test:${hs.port}` },
  };
  try {
    const { status, userinfo } = await exchange("wkredirect.test", hs);
    assert.equal(status, 200);
    assert.deepEqual(userinfo.map((r) => r.host), [`hs.test:${hs.port}`]);
  } finally {
    hs.wellKnownServer = undefined;
  }
}, true);

test("well-known delegation to an IP literal is followed", async () => {
  wk!.wellKnownServer = {
    status: 200,
    body: { "m.server": `127.0.0.1:${hs.port}` },
  };
  const { status, userinfo } = await exchange("wkip.test", hs);
  assert.equal(status, 200);
  assert.deepEqual(userinfo.map((r) => r.host), [`127.0.0.1:${hs.port}`]);
}, true);

test(
  "well-known delegation to a name without a port uses the delegated name's SRV",
  async () => {
    wk!.wellKnownServer = { status: 200, body: { "m.server": "deleg.test" } };
    dns.srv.set("_matrix-fed._tcp.deleg.test", [{
      target: "hs.test",
      port: hs.port,
    }]);
    const { status, userinfo } = await exchange("wk.test", hs);
    assert.equal(status, 200);
    // Host and certificate are the delegated name, not the SRV target.
    assert.deepEqual(userinfo.map((r) => r.host), ["deleg.test"]);
  },
  true,
);

test("SRV _matrix-fed._tcp gives the target, with the server name as Host and certificate", async () => {
  dns.srv.set("_matrix-fed._tcp.srv.test", [{
    target: "hs.test",
    port: hs.port,
  }]);
  const { status, userinfo } = await exchange("srv.test", hs);
  assert.equal(status, 200);
  assert.deepEqual(userinfo.map((r) => r.host), ["srv.test"]);
});

test("the deprecated SRV _matrix._tcp is used when _matrix-fed._tcp has none", async () => {
  dns.srv.set("_matrix._tcp.oldsrv.test", [{
    target: "hs.test",
    port: hs.port,
  }]);
  const { status, userinfo } = await exchange("oldsrv.test", hs);
  assert.equal(status, 200);
  assert.deepEqual(userinfo.map((r) => r.host), ["oldsrv.test"]);
  assert.ok(
    dns.queries.some((q) => q.name.startsWith("_matrix-fed._tcp.oldsrv.test")),
  );
});

test("_matrix-fed._tcp wins over _matrix._tcp", async () => {
  dns.srv.set("_matrix-fed._tcp.both.test", [{
    target: "hs.test",
    port: hs.port,
  }]);
  dns.srv.set("_matrix._tcp.both.test", [{ target: "hs.test", port: 1 }]);
  const { status, userinfo } = await exchange("both.test", hs);
  assert.equal(status, 200);
  assert.equal(userinfo.length, 1);
});

test("with no well-known and no SRV the host's port 8448 is used", async () => {
  const { status, userinfo } = await exchange("fb.test", fallback);
  assert.equal(status, 200);
  assert.deepEqual(userinfo.map((r) => r.host), ["fb.test"]);
});

test("a certificate that does not cover the server name is refused with 401", async () => {
  // hs's certificate has no name "badcert.test".
  dns.srv.set("_matrix-fed._tcp.badcert.test", [{
    target: "hs.test",
    port: hs.port,
  }]);
  const { status, userinfo } = await exchange("badcert.test", hs);
  assert.equal(status, 401);
  assert.equal(userinfo.length, 0, "nothing sent over the refused connection");
  await service.waitForLog(/cert|altname|certificate/i);
});

test("an invalid server name is refused with 401 and no outgoing request", async () => {
  const requests = hs.requests.length;
  const { status } = await exchange("bad name!", hs);
  assert.equal(status, 401);
  assert.equal(hs.requests.length, requests);
});

function wellKnownFetches(host: string): number {
  return wk!.requests.filter((r) =>
    r.path === "/.well-known/matrix/server" && r.host === host
  )
    .length;
}

test("a well-known answer without caching headers is kept (24 h)", async () => {
  wk!.wellKnownServer = {
    status: 200,
    body: { "m.server": `hs.test:${hs.port}` },
  };
  // wkdeleg.test was looked up above; it is not asked again.
  const before = wellKnownFetches("wkdeleg.test");
  assert.equal((await exchange("wkdeleg.test", hs)).status, 200);
  assert.equal(wellKnownFetches("wkdeleg.test"), before);
  assert.ok(before >= 1);
}, true);

test(
  "a well-known answer with max-age=1 is asked again after a second",
  async () => {
    wk!.wellKnownServer = {
      status: 200,
      body: { "m.server": `hs.test:${hs.port}` },
      headers: { "Cache-Control": "public, max-age=1" },
    };
    assert.equal((await exchange("wkshort.test", hs)).status, 200);
    assert.equal((await exchange("wkshort.test", hs)).status, 200);
    assert.equal(wellKnownFetches("wkshort.test"), 1);
    await new Promise((r) => setTimeout(r, 1_200));
    assert.equal((await exchange("wkshort.test", hs)).status, 200);
    assert.equal(wellKnownFetches("wkshort.test"), 2);
  },
  true,
);

test("a well-known answer with no-store is asked every time", async () => {
  wk!.wellKnownServer = {
    status: 200,
    body: { "m.server": `hs.test:${hs.port}` },
    headers: { "Cache-Control": "no-store" },
  };
  assert.equal((await exchange("wknostore.test", hs)).status, 200);
  assert.equal((await exchange("wknostore.test", hs)).status, 200);
  assert.equal(wellKnownFetches("wknostore.test"), 2);
}, true);
