/**
 * @module Black-box tests of job persistence in a real redis-server (SPEC 12):
 * the reference's format, restore on start-up, and Redis outages.
 */

import assert from "node:assert/strict";
import {
  type RedisServer,
  redisSkipReason,
  referenceJobValue,
  startRedis,
} from "../_redis.ts";
import { type ServiceProcess, startService } from "../_utils.ts";
import { startWorld, type World } from "../_world.ts";

const HASH = "lk-jwt:jobs";
const skip = redisSkipReason();
if (skip !== undefined) {
  console.log(`SKIPPED: Redis persistence tests: ${skip}`);
}

let world: World;
let redis: RedisServer;

Deno.test.beforeAll(async () => {
  if (skip !== undefined) return;
  world = await startWorld();
  redis = await startRedis();
});

Deno.test.afterAll(async () => {
  if (skip !== undefined) return;
  await redis.stop();
  await world.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function test(name: string, fn: () => Promise<void>) {
  Deno.test({
    name,
    ignore: skip !== undefined,
    sanitizeOps: false,
    sanitizeResources: false,
    fn,
  });
}

const member = (timeoutMs: number) => world.delayedMember(timeoutMs);

function serviceEnv(extra: Record<string, string> = {}) {
  return world.env({ LIVEKIT_REDIS_URL: redis.url, ...extra });
}

/** A stored job, as the reference writes it. */
interface StoredJob {
  Params: {
    DelayId: string;
    DelayTimeout: number;
    ServerName: string;
    LiveKitRoom: string;
    LiveKitIdentity: string;
  };
  RestartedAt: string;
}

async function stored(field: string): Promise<StoredJob | undefined> {
  const value = await redis.withClient((c) => c.hGet(HASH, field));
  return value == null ? undefined : JSON.parse(value);
}

async function waitStored(
  field: string,
  predicate: (v: StoredJob | undefined) => boolean,
  timeoutMs: number,
): Promise<StoredJob | undefined> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await stored(field);
    if (predicate(value)) return value;
    if (Date.now() > until) {
      throw new Error(
        `stored job ${field} never matched; last: ${JSON.stringify(value)}`,
      );
    }
    await sleep(50);
  }
}

async function webhook(
  service: ServiceProcess,
  event: string,
  m: { room: string; identity: string },
  reason?: string,
) {
  assert.equal(await world.webhook(service.url, event, m, reason), 200);
}

test("a job is written on start, updated on each restart and deleted at the end", async () => {
  const service = await startService(serviceEnv());
  try {
    const m = member(1500);
    const { status } = await service.post("/delegate_delayed_leave", m.body);
    assert.equal(status, 200);
    const first = await waitStored(m.field, (v) => v !== undefined, 1_000);
    assert.deepEqual(first!.Params, {
      DelayId: m.delayId,
      DelayTimeout: 1_500_000_000,
      ServerName: world.hsName,
      LiveKitRoom: m.room,
      LiveKitIdentity: m.identity,
    });
    assert.match(first!.RestartedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$/);
    await webhook(service, "participant_joined", m);
    await world.hs.waitFor(
      () => world.hs.calls("restart", m.delayId).length >= 2,
      3_000,
    );
    const later = await waitStored(
      m.field,
      (v) => v !== undefined && v.RestartedAt !== first!.RestartedAt,
      1_000,
    );
    assert.ok(Date.parse(later!.RestartedAt) > Date.parse(first!.RestartedAt));
    await webhook(service, "participant_left", m, "CLIENT_INITIATED");
    await world.hs.waitFor(
      () => world.hs.calls("send", m.delayId).length === 1,
      1_500,
    );
    await waitStored(m.field, (v) => v === undefined, 1_000);
  } finally {
    await service.stop();
  }
});

test("a job survives killing and restarting the service", async () => {
  const m = member(3000);
  const first = await startService(serviceEnv());
  assert.equal(
    (await first.post("/delegate_delayed_leave", m.body)).status,
    200,
  );
  world.sfu.addParticipant(m.room, m.identity);
  await world.hs.waitFor(
    () => world.hs.calls("restart", m.delayId).length >= 1,
    2_000,
  );
  await first.stop("SIGKILL");
  assert.ok(await stored(m.field), "the record outlives the process");

  const second = await startService(serviceEnv());
  try {
    await second.waitForLog(/Restored delayed-leave jobs/);
    const before = world.hs.calls("restart", m.delayId).length;
    // Found on the SFU by the restored job's look-up, then restarted again.
    await world.hs.waitFor(
      () => world.hs.calls("restart", m.delayId).length > before,
      2_000,
    );
    world.sfu.removeParticipant(m.room, m.identity);
    await webhook(second, "participant_left", m, "CLIENT_INITIATED");
    await world.hs.waitFor(
      () => world.hs.calls("send", m.delayId).length === 1,
      1_500,
    );
    await waitStored(m.field, (v) => v === undefined, 1_000);
  } finally {
    await second.stop();
  }
});

test("SIGTERM leaves persisted jobs in Redis and sends nothing", async () => {
  const m = member(2000);
  const service = await startService(serviceEnv());
  assert.equal(
    (await service.post("/delegate_delayed_leave", m.body)).status,
    200,
  );
  await waitStored(m.field, (v) => v !== undefined, 1_000);
  assert.equal((await service.stop("SIGTERM")).code, 0);
  await sleep(2_500);
  assert.equal(world.hs.calls("send", m.delayId).length, 0);
  assert.ok(await stored(m.field), "record kept for the next start");
  await redis.withClient((c) => c.hDel(HASH, m.field));
});

test("expired jobs are deleted at start-up and unreadable ones are skipped with a warning", async () => {
  const expired = member(1000);
  const expiredValue = referenceJobValue(
    expired,
    world.hsName,
    1000,
    "2026-01-01T00:00:00.123456789Z",
  );
  await redis.withClient(async (c) => {
    await c.hSet(HASH, expired.field, expiredValue);
    await c.hSet(HASH, '["broken","entry"]', "{not json");
  });
  const service = await startService(serviceEnv());
  try {
    await service.waitForLog(/Skipping unreadable stored job/);
    await waitStored(expired.field, (v) => v === undefined, 1_000);
    assert.ok(
      await redis.withClient((c) => c.hExists(HASH, '["broken","entry"]')),
      "kept, not deleted",
    );
    await sleep(500);
    assert.equal(world.hs.calls("send", expired.delayId).length, 0);
  } finally {
    await service.stop();
    await redis.withClient((c) => c.hDel(HASH, '["broken","entry"]'));
  }
});

test("a job written by the reference (SPEC 12 fixture) is restored and completes", async () => {
  const m = member(3000);
  // Written as the reference's Go code writes it: nanoseconds, RFC 3339 with nine digits and an offset.
  // Now, written in the +01:00 zone: the UTC clock an hour ahead, with that offset.
  const restartedAt = new Date(Date.now() + 3600_000).toISOString()
    .replace(/\.(\d{3})Z$/, ".$1456789+01:00");
  const value =
    `{"Params":{"DelayId":"${m.delayId}","DelayTimeout":3000000000,"ServerName":"${world.hsName}",` +
    `"LiveKitRoom":"${m.room}","LiveKitIdentity":"${m.identity}"},"RestartedAt":"${restartedAt}"}`;
  await redis.withClient((c) => c.hSet(HASH, m.field, value));
  world.sfu.addParticipant(m.room, m.identity);
  const service = await startService(serviceEnv());
  try {
    await world.hs.waitFor(
      () => world.hs.calls("restart", m.delayId).length >= 1,
      2_000,
    );
    world.sfu.removeParticipant(m.room, m.identity);
    await webhook(service, "participant_connection_aborted", m, "SIGNAL_CLOSE");
    await world.hs.waitFor(
      () => world.hs.calls("send", m.delayId).length === 1,
      1_500,
    );
    await waitStored(m.field, (v) => v === undefined, 1_000);
  } finally {
    await service.stop();
  }
});

test("tokens and jobs keep working while Redis is down, and the job is written once it is back", async () => {
  const service = await startService(serviceEnv());
  try {
    await redis.stop();
    const m = member(3000);
    const { status } = await service.post("/delegate_delayed_leave", m.body);
    assert.equal(status, 200);
    await service.waitForLog(/Redis write failed/);
    const token = await service.post("/get_token", world.tokenRequest());
    assert.equal(token.status, 200);
    await webhook(service, "participant_joined", m);
    await world.hs.waitFor(
      () => world.hs.calls("restart", m.delayId).length >= 1,
      1_500,
    );
    await redis.start();
    await waitStored(m.field, (v) => v?.Params?.DelayId === m.delayId, 10_000);
    await webhook(service, "participant_left", m, "CLIENT_INITIATED");
    await world.hs.waitFor(
      () => world.hs.calls("send", m.delayId).length === 1,
      1_500,
    );
    await waitStored(m.field, (v) => v === undefined, 2_000);
  } finally {
    await service.stop();
  }
});

test("/readyz reports Redis being unreachable, and recovers", async () => {
  const service = await startService(serviceEnv());
  try {
    const ready = await service.fetch("/readyz");
    assert.equal(ready.status, 200);
    await ready.body?.cancel();
    await redis.stop();
    const down = await service.fetch("/readyz");
    assert.equal(down.status, 503);
    assert.match((await down.json()).reason, /Redis/);
    await redis.start();
    const until = Date.now() + 10_000;
    let status = 0;
    while (status !== 200 && Date.now() < until) {
      const again = await service.fetch("/readyz");
      status = again.status;
      await again.body?.cancel();
      if (status !== 200) await sleep(100);
    }
    assert.equal(status, 200);
  } finally {
    await service.stop();
  }
});
