/** @module Self-test of the fake homeserver over real HTTPS with the test CA. */

import assert from "node:assert/strict";
import { startFakeHomeserver } from "../_fakes/homeserver.ts";
import { makeTestCa, type TestCa } from "../_fakes/tls.ts";
import type { FakeHomeserver } from "../_fakes/homeserver.ts";
import { describe } from "./_openssl.ts";

const DELAYED = "/_matrix/client/unstable/org.matrix.msc4140/delayed_events";

/** Runs `fn` with a fresh CA, homeserver and a client trusting the CA. */
async function withHomeserver(
  fn: (
    hs: FakeHomeserver,
    client: Deno.HttpClient,
    ca: TestCa,
  ) => Promise<void>,
): Promise<void> {
  const ca = await makeTestCa();
  const hs = await startFakeHomeserver({ ca, names: ["hs.example.test"] });
  const client = Deno.createHttpClient({ caCerts: [ca.caPem] });
  try {
    await fn(hs, client, ca);
  } finally {
    client.close();
    await hs.close();
    await ca.cleanup();
  }
}

/** Fetches through `client` and returns status, parsed body and headers. */
async function call(
  client: Deno.HttpClient,
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await fetch(url, { ...init, client });
  const text = await res.text();
  return {
    status: res.status,
    body: text === "" ? undefined : JSON.parse(text),
    headers: res.headers,
  };
}

Deno.test("homeserver answers userinfo for a known token over HTTPS", async () => {
  await withHomeserver(async (hs, client) => {
    hs.tokens.set("tok-alice", "@alice:example.test");
    const res = await call(
      client,
      `${hs.url}/_matrix/federation/v1/openid/userinfo?access_token=tok-alice`,
    );
    assert.deepEqual(res, {
      status: 200,
      body: { sub: "@alice:example.test" },
      headers: res.headers,
    });
    const [recorded] = hs.userinfoCalls();
    assert.equal(hs.userinfoCalls().length, 1);
    assert.equal(recorded?.method, "GET");
    assert.equal(recorded?.search, "?access_token=tok-alice");
    assert.equal(recorded?.host, `127.0.0.1:${hs.port}`);
    assert.ok(Math.abs((recorded?.at ?? 0) - Date.now()) < 5000);
  });
});

Deno.test("homeserver answers 401 M_UNKNOWN_TOKEN for an unknown token", async () => {
  await withHomeserver(async (hs, client) => {
    const res = await call(
      client,
      `${hs.url}/_matrix/federation/v1/openid/userinfo?access_token=nope`,
    );
    assert.equal(res.status, 401);
    assert.deepEqual(res.body, {
      errcode: "M_UNKNOWN_TOKEN",
      error: "Access token unknown or expired",
    });
  });
});

Deno.test("homeserver userinfoAnswers override tokens one call at a time", async () => {
  await withHomeserver(async (hs, client) => {
    hs.tokens.set("t", "@alice:example.test");
    hs.userinfoAnswers.push({ status: 502, body: "not json" });
    const url =
      `${hs.url}/_matrix/federation/v1/openid/userinfo?access_token=t`;
    const first = await fetch(url, { client });
    assert.equal(first.status, 502);
    assert.equal(await first.text(), "not json");
    assert.equal((await call(client, url)).status, 200);
  });
});

Deno.test("homeserver is refused by a client that does not trust the test CA", async () => {
  await withHomeserver(async (hs) => {
    await assert.rejects(
      fetch(`${hs.url}/.well-known/matrix/server`),
      (e: unknown) =>
        e instanceof TypeError &&
        /certificate|UnknownIssuer/i.test(String(e.cause ?? e.message)),
    );
    // The handshake failed before any HTTP request was made.
    assert.equal(hs.requests.length, 0);
  });
});

Deno.test("homeserver certificate covers localhost, 127.0.0.1 and the names asked for", async () => {
  await withHomeserver(async (hs) => {
    assert.match(
      await describe(hs.certPem),
      /DNS:hs\.example\.test, DNS:localhost, IP Address:127\.0\.0\.1\n/,
    );
  });
});

Deno.test("homeserver serves scripted well-knowns and 404 when unset", async () => {
  await withHomeserver(async (hs, client) => {
    assert.deepEqual(
      (await call(client, `${hs.url}/.well-known/matrix/server`)).body,
      { errcode: "M_UNRECOGNIZED", error: "Unrecognized request" },
    );
    hs.wellKnownServer = {
      status: 200,
      body: { "m.server": "delegated.example.test:443" },
      headers: { "cache-control": "max-age=60" },
    };
    hs.wellKnownClient = {
      status: 200,
      body: { "m.homeserver": { base_url: hs.url } },
    };
    const server = await call(client, `${hs.url}/.well-known/matrix/server`);
    assert.equal(server.status, 200);
    assert.deepEqual(server.body, { "m.server": "delegated.example.test:443" });
    assert.equal(server.headers.get("cache-control"), "max-age=60");
    const wkClient = await call(client, `${hs.url}/.well-known/matrix/client`);
    assert.deepEqual(wkClient.body, { "m.homeserver": { base_url: hs.url } });
    assert.deepEqual(
      hs.requests.map((r) => r.path),
      [
        "/.well-known/matrix/server",
        "/.well-known/matrix/server",
        "/.well-known/matrix/client",
      ],
    );
  });
});

Deno.test("homeserver answers delayed-event calls from the script, then 200 {}", async () => {
  await withHomeserver(async (hs, client) => {
    const id = "syd_abc/def";
    hs.delayed.set(id, {
      restart: [
        {
          status: 429,
          body: { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 1500 },
          headers: { "retry-after": "2" },
        },
        { status: 204 },
      ],
      send: [{ status: 404, body: { errcode: "M_NOT_FOUND" } }],
    });
    const base = `${hs.url}${DELAYED}/${encodeURIComponent(id)}`;
    const post = { method: "POST", body: "{}" };

    const limited = await call(client, `${base}/restart`, post);
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("retry-after"), "2");
    assert.deepEqual(limited.body, {
      errcode: "M_LIMIT_EXCEEDED",
      retry_after_ms: 1500,
    });
    const noContent = await call(client, `${base}/restart`, post);
    assert.equal(noContent.status, 204);
    assert.equal(noContent.body, undefined);
    const exhausted = await call(client, `${base}/restart`, post);
    assert.deepEqual([exhausted.status, exhausted.body], [200, {}]);
    const sent = await call(client, `${base}/send`, post);
    assert.deepEqual([sent.status, sent.body], [404, {
      errcode: "M_NOT_FOUND",
    }]);

    const other = await call(client, `${hs.url}${DELAYED}/unknown/send`, post);
    assert.deepEqual([other.status, other.body], [200, {}]);

    assert.equal(hs.calls("restart", id).length, 3);
    assert.equal(hs.calls("send", id).length, 1);
    assert.equal(hs.calls("send").length, 2);
    assert.equal(hs.calls("restart", "unknown").length, 0);
    assert.equal(hs.calls("restart")[0]?.body, "{}");
    assert.equal(
      hs.calls("restart")[0]?.path,
      `${DELAYED}/syd_abc%2Fdef/restart`,
    );
  });
});

Deno.test("homeserver answers 404 M_UNRECOGNIZED to anything else, and records it", async () => {
  await withHomeserver(async (hs, client) => {
    const wrongMethod = await call(client, `${hs.url}${DELAYED}/x/restart`);
    const unknown = await call(client, `${hs.url}/_matrix/client/versions`);
    for (const res of [wrongMethod, unknown]) {
      assert.equal(res.status, 404);
      assert.deepEqual(res.body, {
        errcode: "M_UNRECOGNIZED",
        error: "Unrecognized request",
      });
    }
    assert.deepEqual(hs.requests.map((r) => `${r.method} ${r.path}`), [
      `GET ${DELAYED}/x/restart`,
      "GET /_matrix/client/versions",
    ]);
    assert.equal(hs.calls("restart").length, 0);
  });
});

Deno.test("homeserver holds requests while hang is on and answers once it is off", async () => {
  await withHomeserver(async (hs, client) => {
    hs.tokens.set("t", "@alice:example.test");
    hs.hang = true;
    const pending = call(
      client,
      `${hs.url}/_matrix/federation/v1/openid/userinfo?access_token=t`,
    );
    // Recorded at once, but not answered.
    await hs.waitFor(() => hs.userinfoCalls().length === 1, 2000);
    let settled = false;
    pending.finally(() => settled = true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(settled, false);
    hs.hang = false;
    assert.deepEqual((await pending).body, { sub: "@alice:example.test" });
  });
});

Deno.test("homeserver lets a client time out while hanging, then closes cleanly", async () => {
  await withHomeserver(async (hs, client) => {
    hs.hang = true;
    await assert.rejects(
      fetch(`${hs.url}/.well-known/matrix/client`, {
        client,
        signal: AbortSignal.timeout(200),
      }),
      { name: "TimeoutError" },
    );
    assert.equal(hs.requests.length, 1);
  });
});

Deno.test("homeserver close() releases requests still hanging", async () => {
  const ca = await makeTestCa();
  const hs = await startFakeHomeserver({ ca, names: [] });
  const client = Deno.createHttpClient({ caCerts: [ca.caPem] });
  try {
    hs.hang = true;
    const pending = fetch(`${hs.url}/.well-known/matrix/server`, { client })
      .then(async (res) => [res.status, await res.text()] as const)
      .catch((e: unknown) => e);
    await hs.waitFor(() => hs.requests.length === 1, 2000);
    await hs.close();
    const outcome = await pending;
    // Either the 503 made it out before the socket closed, or the socket did.
    if (Array.isArray(outcome)) assert.equal(outcome[0], 503);
    else assert.ok(outcome instanceof TypeError, String(outcome));
  } finally {
    client.close();
    await hs.close();
    await ca.cleanup();
  }
});

Deno.test("homeserver waitFor() rejects with a clear message on timeout", async () => {
  await withHomeserver(async (hs) => {
    await assert.rejects(hs.waitFor(() => false, 50), {
      message: "waitFor: condition still false after 50 ms",
    });
  });
});
