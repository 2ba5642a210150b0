/**
 * @module Black-box tests of outgoing certificate checks and
 * LIVEKIT_INSECURE_SKIP_VERIFY_TLS (SPEC 1): the homeserver's certificate
 * comes from a CA the service was not told to trust.
 */

import assert from "node:assert/strict";
import { startService } from "../_utils.ts";
import { startWorld, type World } from "../_world.ts";

let world: World;

Deno.test.beforeAll(async () => {
  world = await startWorld();
});

Deno.test.afterAll(async () => {
  await world.close();
});

/** The world's environment without the test CA: the homeserver's certificate is untrusted. */
function untrusted(extra: Record<string, string>): Record<string, string> {
  const env = world.env(extra);
  delete env.SSL_CERT_FILE;
  return env;
}

const sanitizers = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name:
    "certificate checks are on by default: an untrusted homeserver gets 401",
  ...sanitizers,
  async fn() {
    const service = await startService(untrusted({}));
    try {
      const { status } = await service.post("/get_token", world.tokenRequest());
      assert.equal(status, 401);
      assert.equal(world.hs.userinfoCalls().length, 0);
      await service.waitForLog(
        /certificate|UnknownIssuer|self.signed|unable to verify/i,
      );
      assert.ok(!service.logs.includes("INSECURE"), "no insecure warning");
    } finally {
      await service.stop();
    }
  },
});

Deno.test({
  name:
    "LIVEKIT_INSECURE_SKIP_VERIFY_TLS with another value keeps the checks on",
  ...sanitizers,
  async fn() {
    for (const value of ["true", "yes", "YES_I_KNOW_WHAT_I_AM_DOING "]) {
      const service = await startService(
        untrusted({ LIVEKIT_INSECURE_SKIP_VERIFY_TLS: value }),
      );
      try {
        const { status } = await service.post(
          "/get_token",
          world.tokenRequest(),
        );
        assert.equal(status, 401, `value ${JSON.stringify(value)}`);
      } finally {
        await service.stop();
      }
    }
  },
});

Deno.test({
  name:
    "LIVEKIT_INSECURE_SKIP_VERIFY_TLS=YES_I_KNOW_WHAT_I_AM_DOING turns the checks off, loudly",
  ...sanitizers,
  async fn() {
    const service = await startService(
      untrusted({
        LIVEKIT_INSECURE_SKIP_VERIFY_TLS: "YES_I_KNOW_WHAT_I_AM_DOING",
      }),
    );
    try {
      const { status } = await service.post("/get_token", world.tokenRequest());
      assert.equal(status, 200);
      assert.match(
        service.logs,
        /level=warn msg="LIVEKIT_INSECURE_SKIP_VERIFY_TLS is on/,
      );
    } finally {
      await service.stop();
    }
  },
});

Deno.test({
  name: "SSL_CERT_FILE makes the service trust a private CA",
  ...sanitizers,
  async fn() {
    const service = await startService(world.env());
    try {
      const { status } = await service.post("/get_token", world.tokenRequest());
      assert.equal(status, 200);
    } finally {
      await service.stop();
    }
  },
});
