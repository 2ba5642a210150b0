/**
 * Tests of deploy/Caddyfile: Caddy accepts it as shipped, and, run in front of
 * a stand-in upstream, it strips /livekit/jwt and serves the well-known
 * document with the LiveKit focus.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { findCaddy, startCaddy } from "./_caddy.ts";
import { ROOT, run, startUpstream, testWith } from "./_tools.ts";

const CADDYFILE = join(ROOT, "deploy", "Caddyfile");
const caddy = findCaddy();

/** Environment for caddy with no placeholder set and state in `home`. */
function bareEnv(home: string): Record<string, string> {
  return { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", HOME: home };
}

// --- The file as shipped (no caddy needed). ---

Deno.test("the Caddyfile takes its site address and upstream from placeholders with defaults", async () => {
  const text = await Deno.readTextFile(CADDYFILE);
  assert.match(text, /^\{\$CADDY_SITE_ADDRESS:matrix\.example\.com\} \{$/m);
  assert.match(
    text,
    /^\s*handle_path \/livekit\/jwt\/\* \{\s*\n\s*reverse_proxy \{\$LK_JWT_UPSTREAM:127\.0\.0\.1:8080\}$/m,
  );
});

Deno.test("the Caddyfile's well-known document names the LiveKit focus under /livekit/jwt", async () => {
  const text = await Deno.readTextFile(CADDYFILE);
  const body = text.match(/respond `([^`]*)` 200/)?.[1];
  assert.ok(body, "no respond `...` 200 in the Caddyfile");
  // Substitute each {$VAR:default} with its default, as Caddy does when unset.
  const json = body.replace(/\{\$[A-Z_]+:([^}]*)\}/g, "$1");
  assert.deepEqual(JSON.parse(json)["org.matrix.msc4143.rtc_foci"], [{
    type: "livekit",
    livekit_service_url: "https://matrix.example.com/livekit/jwt",
  }]);
  assert.match(text, /header Access-Control-Allow-Origin "\*"/);
});

// --- Caddy itself. ---

testWith(
  [caddy],
  "caddy validate accepts deploy/Caddyfile as shipped",
  async () => {
    const home = await Deno.makeTempDir();
    try {
      const out = await new Deno.Command(caddy.path!, {
        args: ["validate", "--config", CADDYFILE, "--adapter", "caddyfile"],
        clearEnv: true,
        env: bareEnv(home),
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) +
        new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, text);
      assert.match(text, /Valid configuration/);
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  },
);

testWith(
  [caddy],
  "deploy/Caddyfile is formatted as caddy fmt prints it",
  async () => {
    const out = await run(caddy.path!, ["fmt", CADDYFILE]);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout, await Deno.readTextFile(CADDYFILE));
  },
);

testWith(
  [caddy],
  "Caddy strips /livekit/jwt before proxying to the service",
  async () => {
    await using upstream = startUpstream();
    await using proxy = await startCaddy({
      caddy: caddy.path!,
      caddyfile: CADDYFILE,
      env: { LK_JWT_UPSTREAM: upstream.address },
    });
    const res = await fetch(`${proxy.url}/livekit/jwt/get_token?x=1`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"room_id":"!r:example.com"}',
    });
    assert.equal(res.status, 200, proxy.logs());
    assert.deepEqual(await res.json(), { upstream: true });
    assert.deepEqual(upstream.seen.map((s) => [s.method, s.path, s.body]), [
      ["POST", "/get_token?x=1", '{"room_id":"!r:example.com"}'],
    ]);
    assert.equal(upstream.seen[0]?.forwardedFor, "127.0.0.1");
  },
);

testWith(
  [caddy],
  "Caddy proxies nested service paths such as /livekit/jwt/sfu/get",
  async () => {
    await using upstream = startUpstream();
    await using proxy = await startCaddy({
      caddy: caddy.path!,
      caddyfile: CADDYFILE,
      env: { LK_JWT_UPSTREAM: upstream.address },
    });
    const res = await fetch(`${proxy.url}/livekit/jwt/sfu/get`, {
      method: "POST",
      body: "{}",
    });
    await res.body?.cancel();
    assert.deepEqual(upstream.seen.map((s) => s.path), ["/sfu/get"]);
  },
);

testWith(
  [caddy],
  "Caddy does not proxy paths outside /livekit/jwt/",
  async () => {
    await using upstream = startUpstream();
    await using proxy = await startCaddy({
      caddy: caddy.path!,
      caddyfile: CADDYFILE,
      env: { LK_JWT_UPSTREAM: upstream.address },
    });
    for (const path of ["/get_token", "/livekit/jwtx/get_token"]) {
      const res = await fetch(`${proxy.url}${path}`, { method: "POST" });
      await res.body?.cancel();
    }
    assert.deepEqual(upstream.seen, []);
  },
);

testWith(
  [caddy],
  "Caddy serves /.well-known/matrix/client with rtc_foci and CORS",
  async () => {
    await using proxy = await startCaddy({
      caddy: caddy.path!,
      caddyfile: CADDYFILE,
      env: {
        LK_JWT_UPSTREAM: "127.0.0.1:9",
        MATRIX_BASE_URL: "https://hs.example.org",
        LK_JWT_PUBLIC_URL: "https://example.org/livekit/jwt",
      },
    });
    const res = await fetch(`${proxy.url}/.well-known/matrix/client`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    assert.equal(res.headers.get("content-type"), "application/json");
    assert.deepEqual(await res.json(), {
      "m.homeserver": { base_url: "https://hs.example.org" },
      "org.matrix.msc4143.rtc_foci": [{
        type: "livekit",
        livekit_service_url: "https://example.org/livekit/jwt",
      }],
    });
  },
);
