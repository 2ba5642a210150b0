/** @module The shipped Caddyfile in front of the real service: a token through /livekit/jwt/get_token. */

import assert from "node:assert/strict";
import { jwtVerify } from "jose";
import { findCaddy, startCaddy } from "../deploy/_caddy.ts";
import { testWith } from "../deploy/_tools.ts";
import { API_KEY, API_SECRET, startService } from "../_utils.ts";
import { startWorld } from "../_world.ts";

const caddy = findCaddy();

testWith(
  [caddy],
  "Caddy with deploy/Caddyfile serves a token from /livekit/jwt/get_token",
  async () => {
    const world = await startWorld();
    const service = await startService(world.env());
    try {
      await using proxy = await startCaddy({
        caddy: caddy.path!,
        caddyfile: "deploy/Caddyfile",
        env: { LK_JWT_UPSTREAM: `127.0.0.1:${service.port}` },
      });
      const response = await fetch(`${proxy.url}/livekit/jwt/get_token`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(world.tokenRequest()),
      });
      assert.equal(response.status, 200, proxy.logs());
      assert.equal(response.headers.get("access-control-allow-origin"), "*");
      const { url, jwt } = await response.json();
      assert.equal(url, world.sfu.url);
      const { payload } = await jwtVerify(
        jwt,
        new TextEncoder().encode(API_SECRET),
        {
          issuer: API_KEY,
        },
      );
      assert.equal(typeof payload.sub, "string");
      const health = await fetch(`${proxy.url}/livekit/jwt/healthz`);
      assert.equal(health.status, 200);
      await health.body?.cancel();
    } finally {
      await service.stop();
      await world.close();
    }
  },
);
