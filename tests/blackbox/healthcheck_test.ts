/** @module `lk-jwt-service healthcheck` against a live service, for each form of LIVEKIT_JWT_BIND. */

import assert from "node:assert/strict";
import { freePort, runServiceToExit, startService } from "../_utils.ts";

const BASE: Record<string, string> = {
  LIVEKIT_URL: "ws://127.0.0.1:7880",
  LIVEKIT_KEY: "devkey",
  LIVEKIT_SECRET: "0123456789abcdef0123456789abcdef",
  LIVEKIT_FULL_ACCESS_HOMESERVERS: "example.com",
};

/** Whether this machine has IPv6 on loopback. */
function hasIpv6(): boolean {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
}

const FORMS: [string, (port: number) => string, boolean][] = [
  [":port", (p) => `:${p}`, true],
  ["0.0.0.0:port", (p) => `0.0.0.0:${p}`, true],
  ["127.0.0.1:port", (p) => `127.0.0.1:${p}`, true],
  ["[::]:port", (p) => `[::]:${p}`, hasIpv6()],
  ["[::1]:port", (p) => `[::1]:${p}`, hasIpv6()],
];

for (const [form, bind, possible] of FORMS) {
  Deno.test({
    name: `healthcheck exits 0 against a live service bound to ${form}`,
    ignore: !possible,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const port = freePort();
      const env = { ...BASE, LIVEKIT_JWT_BIND: bind(port) };
      const service = await startService(env);
      try {
        const { code, stderr } = await runServiceToExit(env, ["healthcheck"]);
        assert.equal(code, 0, stderr);
      } finally {
        await service.stop();
      }
    },
  });
}

Deno.test("healthcheck exits non-zero when nothing listens", async () => {
  const { code, stderr } = await runServiceToExit(
    { LIVEKIT_JWT_BIND: `127.0.0.1:${freePort()}` },
    ["healthcheck"],
  );
  assert.notEqual(code, 0);
  assert.match(stderr, /healthcheck: /);
});

Deno.test("healthcheck honours the deprecated LIVEKIT_JWT_PORT", async () => {
  const port = freePort();
  const service = await startService({
    ...BASE,
    LIVEKIT_JWT_BIND: `127.0.0.1:${port}`,
  });
  try {
    const { code } = await runServiceToExit(
      { LIVEKIT_JWT_PORT: String(port) },
      ["healthcheck"],
    );
    assert.equal(code, 0);
  } finally {
    await service.stop();
  }
});
