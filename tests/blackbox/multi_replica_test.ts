/**
 * @module Black-box tests of multi-replica mode: three service processes on
 * one real redis-server share delayed-leave jobs; webhooks land on any of
 * them; a killed replica's jobs are taken over; every leave is sent once.
 */

import assert from "node:assert/strict";
import {
  type RedisServer,
  redisSkipReason,
  referenceJobValue,
  startRedis,
} from "../_redis.ts";
import { type ServiceProcess, startService } from "../_utils.ts";
import { type DelayedMember, startWorld, type World } from "../_world.ts";

const LEASE_SECONDS = 3;
const skip = redisSkipReason();
if (skip !== undefined) console.log(`SKIPPED: multi-replica tests: ${skip}`);

let world: World;
let redis: RedisServer;
let replicas: ServiceProcess[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function replicaEnv() {
  return world.env({
    LIVEKIT_REDIS_URL: redis.url,
    LIVEKIT_MULTI_REPLICA: "true",
    LIVEKIT_REPLICA_LEASE_SECONDS: String(LEASE_SECONDS),
    LIVEKIT_LOG_LEVEL: "info",
  });
}

Deno.test.beforeAll(async () => {
  if (skip !== undefined) return;
  world = await startWorld();
  redis = await startRedis();
  replicas = await Promise.all([0, 1, 2].map(() => startService(replicaEnv())));
});

Deno.test.afterAll(async () => {
  if (skip !== undefined) return;
  await Promise.all(replicas.map((r) => r.stop()));
  await redis.stop();
  await world.close();
});

function test(name: string, fn: () => Promise<void>) {
  Deno.test({
    name,
    ignore: skip !== undefined,
    sanitizeOps: false,
    sanitizeResources: false,
    fn,
  });
}

type Member = DelayedMember;
const member = (timeoutMs: number) => world.delayedMember(timeoutMs);

async function delegate(replica: ServiceProcess, m: Member) {
  const { status, body } = await replica.post(
    "/delegate_delayed_leave",
    m.body,
  );
  assert.equal(status, 200, JSON.stringify(body));
}

async function webhook(
  replica: ServiceProcess,
  event: string,
  m: Member,
  reason?: string,
) {
  assert.equal(await world.webhook(replica.url, event, m, reason), 200);
}

const sends = (m: Member) => world.hs.calls("send", m.delayId).length;
const restarts = (m: Member) => world.hs.calls("restart", m.delayId).length;
const pick = <T>(list: T[]): T =>
  list[Math.floor(Math.random() * list.length)]!;

test("a job made on replica A is completed by webhooks sent to replica B", async () => {
  const [a, b] = replicas as [ServiceProcess, ServiceProcess];
  const m = member(3000);
  await delegate(a, m);
  await webhook(b, "participant_joined", m);
  await world.hs.waitFor(() => restarts(m) >= 1, 2_000);
  await webhook(b, "participant_left", m, "CLIENT_INITIATED");
  await world.hs.waitFor(() => sends(m) === 1, 2_000);
  await sleep(1_000);
  assert.equal(sends(m), 1);
});

test("a killed replica's connected job is taken over and its leave sent once", async () => {
  const [a, , c] = replicas as [ServiceProcess, ServiceProcess, ServiceProcess];
  const m = member(15_000);
  await delegate(a, m);
  await webhook(a, "participant_joined", m);
  await world.hs.waitFor(() => restarts(m) >= 1, 2_000);
  await a.stop("SIGKILL");
  const killed = Date.now();
  // The participant leaves while nobody holds the job.
  await webhook(c, "participant_left", m, "CLIENT_INITIATED");
  await world.hs.waitFor(() => sends(m) === 1, (LEASE_SECONDS + 4) * 1000);
  const failover = world.hs.calls("send", m.delayId)[0]!.at - killed;
  console.log(
    `failover: leave sent ${failover} ms after SIGKILL (lease ${LEASE_SECONDS} s)`,
  );
  assert.ok(
    failover <= (LEASE_SECONDS + 3) * 1000,
    `failover took ${failover} ms`,
  );
  await sleep(1_500);
  assert.equal(sends(m), 1);
  replicas[0] = await startService(replicaEnv());
});

test("a killed replica's waiting job is taken over and finds its participant", async () => {
  const [a, b] = replicas as [ServiceProcess, ServiceProcess];
  const m = member(15_000);
  await delegate(a, m);
  await a.stop("SIGKILL");
  world.sfu.addParticipant(m.room, m.identity);
  // Taken over in Waiting, found by the look-up, then restarted.
  await world.hs.waitFor(() => restarts(m) >= 1, (LEASE_SECONDS + 4) * 1000);
  world.sfu.removeParticipant(m.room, m.identity);
  await webhook(b, "participant_connection_aborted", m, "SIGNAL_CLOSE");
  await world.hs.waitFor(() => sends(m) === 1, 2_000);
  await sleep(1_000);
  assert.equal(sends(m), 1);
  replicas[0] = await startService(replicaEnv());
});

test("a job replaced on another replica stops on its old owner", async () => {
  const [a, b] = replicas as [ServiceProcess, ServiceProcess];
  const old = member(3000);
  await delegate(a, old);
  await webhook(a, "participant_joined", old);
  await world.hs.waitFor(() => restarts(old) >= 1, 2_000);
  // The same participant delegates a new delayed event through replica B.
  const fresh = {
    ...old,
    delayId: `${old.delayId}-new`,
    body: structuredClone(old.body),
  };
  fresh.body.delay_id = fresh.delayId;
  await delegate(b, fresh);
  await webhook(a, "participant_joined", fresh);
  await world.hs.waitFor(() => restarts(fresh) >= 1, 2_000);
  const oldRestarts = restarts(old);
  await sleep(3_000);
  assert.equal(restarts(old), oldRestarts, "the old job no longer restarts");
  await webhook(a, "participant_left", fresh, "CLIENT_INITIATED");
  await world.hs.waitFor(() => sends(fresh) === 1, 2_000);
  await sleep(500);
  assert.equal(sends(old), 0);
  assert.equal(sends(fresh), 1);
});

test("200 jobs over three replicas with webhooks to random replicas all end once", async () => {
  const members = Array.from({ length: 200 }, () => member(20_000));
  const leaving = members.slice(0, 150);
  const aborting = members.slice(150);
  for (const m of members) await delegate(pick(replicas), m);
  await Promise.all(
    leaving.map((m) => webhook(pick(replicas), "participant_joined", m)),
  );
  await Promise.all(
    aborting.map((m) =>
      webhook(
        pick(replicas),
        "participant_connection_aborted",
        m,
        "JOIN_FAILURE",
      )
    ),
  );
  await world.hs.waitFor(() => leaving.every((m) => restarts(m) >= 1), 10_000);
  await Promise.all(
    leaving.map((m) =>
      webhook(pick(replicas), "participant_left", m, "CLIENT_INITIATED")
    ),
  );
  await world.hs.waitFor(() => leaving.every((m) => sends(m) >= 1), 10_000);
  await sleep(1_500);
  for (const m of leaving) assert.equal(sends(m), 1, m.delayId);
  for (const m of aborting) assert.equal(sends(m), 0, m.delayId);
  const left = await redis.withClient((c) => c.hLen("lk-jwt:jobs"));
  assert.equal(left, 0, "every job ended and was deleted");
});

test("webhooks for participants without a job leave nothing in Redis", async () => {
  const m = member(3000);
  await webhook(pick(replicas), "participant_joined", m);
  await webhook(pick(replicas), "participant_left", m, "CLIENT_INITIATED");
  await sleep(300);
  const left = await redis.withClient((c) =>
    Promise.all(
      ["lk-jwt:pending", "lk-jwt:owners", "lk-jwt:jobs"].map((hash) =>
        c.hExists(hash, m.field).then(Boolean)
      ),
    )
  );
  assert.deepEqual(left, [false, false, false]);
});

test("a signal published while the owner's subscription is down is applied when it is back", async () => {
  const [a, b] = replicas as [ServiceProcess, ServiceProcess];
  const m = member(20_000);
  await delegate(a, m);
  await webhook(a, "participant_joined", m);
  await world.hs.waitFor(() => restarts(m) >= 1, 2_000);
  await redis.withClient(async (c) => {
    // Every subscriber loses its connection and cannot reconnect while
    // Redis takes no new clients: replica A hears nothing meanwhile.
    const [, max] = await c.sendCommand(["CONFIG", "GET", "maxclients"]) as [
      string,
      string,
    ];
    await c.sendCommand(["CONFIG", "SET", "maxclients", "1"]);
    try {
      await c.sendCommand(["CLIENT", "KILL", "TYPE", "pubsub"]);
      await webhook(b, "participant_left", m, "CLIENT_INITIATED");
      await sleep(500);
      assert.equal(sends(m), 0, "nobody heard the signal yet");
    } finally {
      await c.sendCommand(["CONFIG", "SET", "maxclients", max]);
    }
  });
  // Well before the 20 s delay would send it anyway.
  await world.hs.waitFor(() => sends(m) === 1, 5_000);
  await sleep(1_000);
  assert.equal(sends(m), 1);
  assert.equal(
    await redis.withClient((c) =>
      c.hExists("lk-jwt:pending", m.field).then(Boolean)
    ),
    false,
    "the applied signal is no longer pending",
  );
});

test("a stored job without an owner is left a lease for its owner, then taken over", async () => {
  const m = member(20_000);
  // As the reference writes it, with no owner: as after a Redis restart,
  // before the owner has re-asserted its jobs.
  const value = referenceJobValue(
    m,
    world.hsName,
    20_000,
    new Date().toISOString(),
  );
  world.sfu.addParticipant(m.room, m.identity);
  const written = Date.now();
  await redis.withClient((c) => c.hSet("lk-jwt:jobs", m.field, value));
  await sleep((LEASE_SECONDS * 1000) / 2);
  assert.equal(
    await redis.withClient((c) =>
      c.hExists("lk-jwt:owners", m.field).then(Boolean)
    ),
    false,
    "not taken within half a lease",
  );
  await world.hs.waitFor(() => restarts(m) >= 1, (LEASE_SECONDS + 3) * 1000);
  const adopted = world.hs.calls("restart", m.delayId)[0]!.at - written;
  assert.ok(adopted >= LEASE_SECONDS * 1000, `taken after ${adopted} ms`);
  world.sfu.removeParticipant(m.room, m.identity);
  await webhook(pick(replicas), "participant_left", m, "CLIENT_INITIATED");
  await world.hs.waitFor(() => sends(m) === 1, 2_000);
  await sleep(1_000);
  assert.equal(sends(m), 1);
});

test("a webhook that reached another replica while Redis was down is delivered once it is back", async () => {
  const [a, b] = replicas as [ServiceProcess, ServiceProcess];
  const m = member(20_000);
  await delegate(a, m);
  await webhook(a, "participant_joined", m);
  await world.hs.waitFor(() => restarts(m) >= 1, 2_000);
  await redis.stop();
  // Replica B has no job for the participant and cannot tell replica A.
  await webhook(b, "participant_left", m, "CLIENT_INITIATED");
  await sleep(1_000);
  assert.equal(sends(m), 0, "nobody heard the signal while Redis was down");
  await redis.start();
  // Well before the 20 s delay would send it anyway.
  await world.hs.waitFor(() => sends(m) === 1, 10_000);
  await sleep(1_000);
  assert.equal(sends(m), 1);
});

test("a Redis restart (losing everything) loses no job and sends nothing twice", async () => {
  const members = Array.from({ length: 6 }, () => member(20_000));
  for (const m of members) await delegate(pick(replicas), m);
  await Promise.all(
    members.map((m) => webhook(pick(replicas), "participant_joined", m)),
  );
  await world.hs.waitFor(() => members.every((m) => restarts(m) >= 1), 5_000);
  await redis.stop();
  await sleep(1_000);
  // Tokens are still issued while Redis is away.
  assert.equal(
    (await pick(replicas).post("/get_token", world.tokenRequest())).status,
    200,
  );
  await redis.start();
  // The owners write their jobs again into the empty Redis.
  const until = Date.now() + 10_000;
  let stored = 0;
  while (stored < members.length && Date.now() < until) {
    stored = await redis.withClient((c) => c.hLen("lk-jwt:jobs")).catch(() =>
      0
    );
    if (stored < members.length) await sleep(200);
  }
  assert.equal(stored, members.length);
  await Promise.all(
    members.map((m) =>
      webhook(pick(replicas), "participant_left", m, "CLIENT_INITIATED")
    ),
  );
  await world.hs.waitFor(() => members.every((m) => sends(m) >= 1), 5_000);
  await sleep(1_500);
  for (const m of members) assert.equal(sends(m), 1, m.delayId);
});
