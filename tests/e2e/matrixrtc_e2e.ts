/**
 * @module The whole MatrixRTC backend on this machine, nothing faked: two
 * Synapse homeservers (federation over TLS from a CA made here, MSC4140
 * delayed events), the LiveKit SFU (`room.auto_create: false`, webhooks to
 * us), Redis, the service started as the release binary runs, and a real
 * LiveKit client (libwebrtc through @livekit/rtc-node) joining with the JWT
 * the service issued. `deno task test:e2e` runs it; scripts/install/e2e.sh
 * installs the pinned programs under `${LK_CACHE_DIR:-.cache}/e2e`.
 *
 * Homeserver 1 (`127.0.0.1:<port>`) is full-access; homeserver 2
 * (`localhost:<port>`) is not. Delays are 10 s; the SFU lets a killed
 * client go after 20 s (see _livekit.ts), so a leave must arrive within that
 * plus a few seconds of the kill.
 *
 * Logs of every process land in a temporary folder, kept (and named at the
 * end) when a test fails or LK_E2E_KEEP_LOGS is set.
 */

import assert from "node:assert/strict";
import { jwtVerify } from "jose";
import { ParticipantInfo_State } from "@livekit/protocol";
import { makeTestCa, type TestCa } from "../_fakes/tls.ts";
import { type RedisServer, startRedis } from "../_redis.ts";
import {
  API_KEY,
  API_SECRET,
  expectedHash,
  type ServiceProcess,
  startService,
} from "../_utils.ts";
import { join, type LiveKitClient, tryJoin } from "./_client.ts";
import { LiveKit, SFU_PEER_TIMEOUT_MS } from "./_livekit.ts";
import { stopAll } from "./_process.ts";
import {
  CALL_MEMBER,
  type MatrixUser,
  type OpenIdToken,
  runningSince,
  Synapse,
} from "./_synapse.ts";
import { freePorts, poll, sleep, toolsOrSkip } from "./_tools.ts";

const tools = toolsOrSkip();
const ignore = tools === undefined;

/** The delay of every delayed leave event here. */
const DELAY_MS = 10_000;
/** "A few seconds" on top of the SFU's own timeout for the leave to arrive. */
const LEAVE_SLACK_MS = 5_000;
const SLOT = "m.call#";

interface Stack {
  dir: string;
  ca: TestCa;
  fullAccess: Synapse;
  restricted: Synapse;
  sfu: LiveKit;
  /** The service trusting the test CA through SSL_CERT_FILE. */
  service: ServiceProcess;
  /** Fixed ports of the services the SFU posts webhooks to. */
  ports: { main: number; skipTls: number; redis: number };
}

let stack: Stack | undefined;
/** Every service started, with a name for its log file. */
const services = new Map<ServiceProcess, string>();
const clients = new Set<LiveKitClient>();
const redisServers = new Set<RedisServer>();
/** Lines for the closing report. */
const report: string[] = [];
let failed = false;

// A runner that exits early still kills what it started (_process.ts does the rest).
globalThis.addEventListener("unload", () => {
  for (const service of services.keys()) void service.stop("SIGKILL");
  for (const redis of redisServers) void redis.stop();
});

function s(): Stack {
  if (stack === undefined) throw new Error("the stack did not start");
  return stack;
}

/** The service's environment: the SFU, both homeservers, debug JSON logs. */
function serviceEnv(tls: "ca" | "skip" | "none"): Record<string, string> {
  const { sfu, fullAccess, ca } = s();
  return {
    LIVEKIT_URL: sfu.url,
    LIVEKIT_KEY: API_KEY,
    LIVEKIT_SECRET: API_SECRET,
    LIVEKIT_FULL_ACCESS_HOMESERVERS: fullAccess.serverName,
    // Delayed events go to Synapse's plain-HTTP client listener.
    LIVEKIT_CS_API_URL_OVERRIDES:
      `${fullAccess.serverName}=${fullAccess.clientUrl}`,
    LIVEKIT_LOG_LEVEL: "debug",
    LIVEKIT_LOG_FORMAT: "json",
    ...(tls === "ca" ? { SSL_CERT_FILE: ca.caFile } : {}),
    ...(tls === "skip"
      ? { LIVEKIT_INSECURE_SKIP_VERIFY_TLS: "YES_I_KNOW_WHAT_I_AM_DOING" }
      : {}),
  };
}

/** Starts the service (as `deno task start` does) on `port` (0: any). */
async function startOurService(
  name: string,
  tls: "ca" | "skip" | "none",
  port: number,
  extra: Record<string, string> = {},
): Promise<ServiceProcess> {
  const started = await startService({
    ...serviceEnv(tls),
    LIVEKIT_JWT_BIND: `127.0.0.1:${port}`,
    ...extra,
  });
  services.set(started, name);
  return started;
}

/** Registers a test that records a failure, so the logs are kept. */
function scenario(name: string, fn: () => Promise<void>): void {
  Deno.test({
    name,
    ignore,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      try {
        await fn();
      } catch (err) {
        failed = true;
        throw err;
      }
    },
  });
}

Deno.test.beforeAll(async () => {
  if (ignore) return;
  const started = Date.now();
  const dir = await Deno.makeTempDir({ prefix: "lk-jwt-e2e-" });
  try {
    const ca = await makeTestCa();
    const [main, skipTls, redis] = freePorts(3) as [number, number, number];
    await Deno.mkdir(`${dir}/hs1`);
    await Deno.mkdir(`${dir}/hs2`);
    const [fullAccess, restricted, sfu] = await Promise.all([
      Synapse.start({
        python: tools.synapsePython,
        ca,
        dir: `${dir}/hs1`,
        naming: "ip",
      }),
      Synapse.start({
        python: tools.synapsePython,
        ca,
        dir: `${dir}/hs2`,
        naming: "localhost",
      }),
      LiveKit.start({
        binary: tools.livekitServer,
        dir,
        apiKey: API_KEY,
        apiSecret: API_SECRET,
        webhookUrls: [main, skipTls, redis].map((port) =>
          `http://127.0.0.1:${port}/sfu_webhook`
        ),
      }),
    ]);
    stack = {
      dir,
      ca,
      fullAccess,
      restricted,
      sfu,
      ports: { main, skipTls, redis },
      service: undefined as unknown as ServiceProcess,
    };
    stack.service = await startOurService("service", "ca", main);
  } catch (err) {
    failed = true;
    console.log(`e2e: the stack did not start; logs kept in ${dir}`);
    throw err;
  }
  report.push(
    `versions: ${
      Object.entries(tools.versions).map(([k, v]) => `${k} ${v}`).join(", ")
    }`,
    `stack up in ${
      Date.now() - started
    } ms: full-access ${stack.fullAccess.serverName}, ` +
      `restricted ${stack.restricted.serverName}, SFU ${stack.sfu.url}`,
  );
});

Deno.test.afterAll(async () => {
  if (ignore) return;
  for (const client of clients) client.child.killNow();
  await Promise.all([...services.keys()].map((p) => p.stop()));
  await Promise.all([...redisServers].map((r) => r.stop()));
  await stopAll();
  if (stack !== undefined) {
    await stack.ca.cleanup();
    const keep = failed || Deno.env.get("LK_E2E_KEEP_LOGS") !== undefined;
    if (keep) {
      let n = 0;
      for (const [service, name] of services) {
        await Deno.writeTextFile(
          `${stack.dir}/${name}-${++n}.log`,
          service.logs,
        );
      }
      report.push(`logs kept in ${stack.dir}`);
    } else {
      await Deno.remove(stack.dir, { recursive: true }).catch(() => {});
    }
  }
  if (report.length > 0) {
    console.log(report.map((l) => `e2e: ${l}`).join("\n"));
  }
});

/** The body of /get_token (MSC4195) for `user` in `roomId`. */
function tokenRequest(
  user: MatrixUser,
  openid: OpenIdToken,
  roomId: string,
  memberId: string,
  delay?: { id: string; timeoutMs: number },
): Record<string, unknown> {
  return {
    room_id: roomId,
    slot_id: SLOT,
    openid_token: openid,
    member: {
      id: memberId,
      claimed_user_id: user.userId,
      claimed_device_id: user.deviceId,
    },
    ...(delay ? { delay_id: delay.id, delay_timeout: delay.timeoutMs } : {}),
  };
}

/** What the service answered, with the JWT checked against the secret. */
interface Issued {
  url: string;
  jwt: string;
  room: string;
  identity: string;
}

async function getToken(
  via: ServiceProcess,
  body: Record<string, unknown>,
): Promise<Issued> {
  const { status, body: answer } = await via.post("/get_token", body);
  assert.equal(status, 200, `/get_token: ${JSON.stringify(answer)}`);
  assert.equal(answer.url, s().sfu.url);
  const jwt = answer.jwt as string;
  const { payload } = await jwtVerify(
    jwt,
    new TextEncoder().encode(API_SECRET),
    { issuer: API_KEY },
  );
  const video = payload.video as { room: string; roomJoin: boolean };
  assert.equal(video.roomJoin, true);
  return {
    url: answer.url as string,
    jwt,
    room: video.room,
    identity: payload.sub!,
  };
}

async function joinClient(issued: Issued): Promise<LiveKitClient> {
  const client = await join({
    node: tools!.node,
    url: issued.url,
    jwt: issued.jwt,
    logDir: s().dir,
  });
  clients.add(client);
  return client;
}

/** The SFU's view of a participant: undefined when it is not in the room. */
async function participant(room: string, identity: string) {
  const all = await s().sfu.rooms.listParticipants(room).catch(() => []);
  return all.find((p) => p.identity === identity);
}

/** The service's JSON log lines whose message and fields match. */
function logged(
  of: ServiceProcess,
  msg: string,
  fields: Record<string, unknown> = {},
): Record<string, unknown>[] {
  return of.logLines.flatMap((line) => {
    try {
      const entry = JSON.parse(line);
      return entry.msg === msg &&
          Object.entries(fields).every(([k, v]) => entry[k] === v)
        ? [entry]
        : [];
    } catch {
      return [];
    }
  });
}

/** Waits until the service has logged `msg` with `fields` more than `after` times. */
async function awaitLogged(
  of: ServiceProcess,
  msg: string,
  fields: Record<string, unknown>,
  timeoutMs: number,
  after = 0,
): Promise<void> {
  await poll(
    `the service to log "${msg}" for ${JSON.stringify(fields)}`,
    () =>
      Promise.resolve(
        logged(of, msg, fields).length > after ? true : undefined,
      ),
    timeoutMs,
    50,
  );
}

/** A MatrixRTC call membership (MSC4143) naming the service as the focus. */
function membership(
  user: MatrixUser,
  via: ServiceProcess,
  roomId: string,
): Record<string, unknown> {
  return {
    application: "m.call",
    call_id: "",
    scope: "m.room",
    device_id: user.deviceId,
    expires: 4 * 3600_000,
    "m.call.intent": "audio",
    focus_active: { type: "livekit", focus_selection: "oldest_membership" },
    foci_preferred: [{
      type: "livekit",
      livekit_service_url: via.url,
      livekit_alias: roomId,
    }],
  };
}

/** A call in progress: the Matrix side, the LiveKit side and the client. */
interface Call {
  user: MatrixUser;
  roomId: string;
  stateKey: string;
  delayId: string;
  scheduledAt: number;
  issued: Issued;
  client: LiveKitClient;
}

/**
 * Joins a call as Element Call does with MSC4140: schedule the leave (the
 * membership emptied) as a delayed state event, send the membership, hand the
 * delayed event to the service (at /delegate_delayed_leave or through the
 * delay parameters of /get_token), and join the SFU.
 */
async function startCall(
  via: ServiceProcess,
  handOver: "delegate" | "get_token",
): Promise<Call> {
  const user = await s().fullAccess.register("caller");
  const roomId = await user.createRoom(`call via ${handOver}`);
  const stateKey = `_${user.userId}_${user.deviceId}_m.call`;
  const memberId = `member-${crypto.randomUUID().slice(0, 8)}`;
  const scheduledAt = Date.now();
  const delayId = await user.sendDelayedState(
    roomId,
    CALL_MEMBER,
    stateKey,
    {},
    DELAY_MS,
  );
  await user.sendState(
    roomId,
    CALL_MEMBER,
    stateKey,
    membership(user, via, roomId),
  );
  const openid = await user.openIdToken();
  const delay = { id: delayId, timeoutMs: DELAY_MS };
  let issued: Issued;
  if (handOver === "get_token") {
    issued = await getToken(
      via,
      tokenRequest(user, openid, roomId, memberId, delay),
    );
  } else {
    issued = await getToken(via, tokenRequest(user, openid, roomId, memberId));
    const { status, body } = await via.post(
      "/delegate_delayed_leave",
      tokenRequest(user, openid, roomId, memberId, delay),
    );
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(body, {});
  }
  const client = await joinClient(issued);
  return { user, roomId, stateKey, delayId, scheduledAt, issued, client };
}

/** The membership's content now: `{}` once the leave was sent. */
function membershipNow(call: Call) {
  return call.user.state(call.roomId, CALL_MEMBER, call.stateKey);
}

/** Asserts, every second for `ms`, that the leave has not been sent. */
async function assertStaysInCall(call: Call, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const content = await membershipNow(call);
    assert.equal(
      content?.application,
      "m.call",
      `the leave was sent while the call was up: ${JSON.stringify(content)}`,
    );
    const pending = await call.user.delayedEvents();
    assert.ok(
      pending.some((e) => e.delay_id === call.delayId),
      "the delayed leave is still scheduled on Synapse",
    );
    await sleep(1_000);
  }
}

/** Kills the client without a goodbye and waits for the leave in the room; returns the time it took. */
async function killAndAwaitLeave(call: Call): Promise<number> {
  const killed = Date.now();
  await call.client.kill();
  clients.delete(call.client);
  const limit = SFU_PEER_TIMEOUT_MS + LEAVE_SLACK_MS;
  await poll(
    `the leave event within ${limit} ms of the kill`,
    async () => {
      const content = await membershipNow(call);
      return content !== undefined && Object.keys(content).length === 0
        ? true
        : undefined;
    },
    limit,
  );
  const tookMs = Date.now() - killed;
  const event = await call.user.stateEvent(
    call.roomId,
    CALL_MEMBER,
    call.stateKey,
  );
  assert.equal(event?.sender, call.user.userId);
  assert.deepEqual(event?.content, {});
  const pending = await call.user.delayedEvents();
  assert.ok(
    !pending.some((e) => e.delay_id === call.delayId),
    "the delayed event is no longer scheduled",
  );
  return tookMs;
}

/**
 * The SFU's webhooks about the participant reached the service (`joinedVia`
 * when a restart came between), and the service sent the leave once.
 */
async function assertServiceSentLeave(
  via: ServiceProcess,
  call: Call,
  joinedVia = via,
): Promise<void> {
  const { room, identity } = call.issued;
  // Synapse has the leave before the service, having had the answer, logs it.
  await awaitLogged(via, "Sent delayed leave event", { room, identity }, 5_000);
  assert.ok(
    logged(joinedVia, "Webhook participant_joined", { room, identity }).length >
      0,
    "the SFU's participant_joined webhook reached the service",
  );
  assert.ok(
    logged(via, "Webhook participant_left", { room, identity }).length +
        logged(via, "Webhook participant_connection_aborted", {
          room,
          identity,
        }).length > 0,
    "the SFU's participant_left webhook reached the service",
  );
  assert.equal(
    logged(via, "Sent delayed leave event", { room, identity }).length,
    1,
    "the service sent the leave, once",
  );
}

scenario(
  "scenario 1: a full-access user's OpenID token buys a JWT, the room is created with timeouts 300/20 and a real client joins it",
  async () => {
    const { fullAccess, sfu, service } = s();
    const alice = await fullAccess.register("alice");
    const roomId = await alice.createRoom("scenario 1");
    const openid = await alice.openIdToken();
    assert.equal(openid.matrix_server_name, fullAccess.serverName);
    const issued = await getToken(
      service,
      tokenRequest(alice, openid, roomId, "member-alice"),
    );
    assert.equal(issued.room, expectedHash([roomId, SLOT]));
    assert.equal(
      issued.identity,
      expectedHash([alice.userId, alice.deviceId, "member-alice"]),
    );

    const [room] = await sfu.rooms.listRooms([issued.room]);
    assert.ok(room, "the room exists on the SFU before anyone joins");
    assert.equal(room.emptyTimeout, 300);
    assert.equal(room.departureTimeout, 20);
    assert.equal(room.maxParticipants, 0);

    const client = await joinClient(issued);
    assert.equal(client.event("joined")?.identity, issued.identity);
    assert.equal(client.event("joined")?.room, issued.room);
    // Active: the SFU's peer connection with the client is up.
    const seen = await poll(
      "the SFU to list the participant as active with its microphone",
      async () => {
        const p = await participant(issued.room, issued.identity);
        return p?.state === ParticipantInfo_State.ACTIVE && p.tracks.length > 0
          ? p
          : undefined;
      },
      10_000,
    );
    assert.equal(seen.tracks.length, 1);
    assert.equal(seen.tracks[0]!.sid, client.event("published")?.track);
    await client.leave();
    clients.delete(client);
    await poll(
      "the participant to be gone after its leave",
      async () =>
        (await participant(issued.room, issued.identity)) === undefined
          ? true
          : undefined,
      10_000,
    );
  },
);

scenario(
  "scenario 2: a restricted user gets a token for a room that does not exist, the SFU refuses the join, and it joins once a full-access user created the room",
  async () => {
    const { fullAccess, restricted, sfu, service } = s();
    const owner = await fullAccess.register("owner");
    const roomId = await owner.createRoom("scenario 2");
    const bob = await restricted.register("bob");
    const issued = await getToken(
      service,
      tokenRequest(bob, await bob.openIdToken(), roomId, "member-bob"),
    );
    assert.equal(
      issued.identity,
      expectedHash([bob.userId, bob.deviceId, "member-bob"]),
    );
    assert.deepEqual(
      await sfu.rooms.listRooms([issued.room]),
      [],
      "no room is created for a restricted user",
    );

    const refused = await tryJoin({
      node: tools!.node,
      url: issued.url,
      jwt: issued.jwt,
      logDir: s().dir,
    });
    assert.ok("error" in refused, "the SFU refuses the join");
    report.push(`scenario 2: the SFU refused the join: ${refused.error}`);
    assert.match(refused.error, /404.*room does not exist/);
    assert.deepEqual(
      await sfu.rooms.listRooms([issued.room]),
      [],
      "the refused join created no room",
    );

    const ownerToken = await getToken(
      service,
      tokenRequest(owner, await owner.openIdToken(), roomId, "member-owner"),
    );
    assert.equal(ownerToken.room, issued.room);
    assert.equal((await sfu.rooms.listRooms([issued.room])).length, 1);

    const client = await joinClient(issued);
    assert.equal(client.event("joined")?.identity, issued.identity);
    await poll(
      "the SFU to list the restricted participant",
      async () =>
        (await participant(issued.room, issued.identity)) ? true : undefined,
      10_000,
    );
    await client.leave();
    clients.delete(client);
  },
);

scenario(
  "scenario 3: a delayed leave delegated at /delegate_delayed_leave is kept alive for 3× its delay and sent once the killed client is gone",
  async () => {
    const { service } = s();
    const call = await startCall(service, "delegate");
    const { room, identity } = call.issued;
    await awaitLogged(
      service,
      "Webhook participant_joined",
      { room, identity },
      10_000,
    );
    await assertStaysInCall(call, 3 * DELAY_MS);
    const [pending] = (await call.user.delayedEvents()).filter((e) =>
      e.delay_id === call.delayId
    );
    assert.ok(
      runningSince(pending!) >= call.scheduledAt + 2 * DELAY_MS,
      "Synapse's timer was restarted after its first expiry would have passed",
    );
    const restarts =
      logged(service, "Restarted delayed event", { identity }).length;
    assert.ok(restarts >= 3, `restarted ${restarts} times in 3 delays`);

    const tookMs = await killAndAwaitLeave(call);
    await assertServiceSentLeave(service, call);
    assert.equal(await participant(room, identity), undefined);
    report.push(
      `scenario 3 (/delegate_delayed_leave): ${restarts} restarts in ${
        3 * DELAY_MS
      } ms; the leave was in the room ${tookMs} ms after the kill`,
    );
  },
);

scenario(
  "scenario 3 through /get_token, with the TLS skip: the delay parameters start the job and the leave follows the killed client",
  async () => {
    const skipping = await startOurService(
      "service-skip-tls",
      "skip",
      s().ports.skipTls,
    );
    try {
      await skipping.waitForLog(/LIVEKIT_INSECURE_SKIP_VERIFY_TLS is on/);
      const call = await startCall(skipping, "get_token");
      const { room, identity } = call.issued;
      await awaitLogged(
        skipping,
        "Webhook participant_joined",
        { room, identity },
        10_000,
      );
      await assertStaysInCall(call, 3 * DELAY_MS);
      const restarts =
        logged(skipping, "Restarted delayed event", { identity }).length;
      assert.ok(restarts >= 3, `restarted ${restarts} times in 3 delays`);
      const tookMs = await killAndAwaitLeave(call);
      await assertServiceSentLeave(skipping, call);
      report.push(
        `scenario 3 (/get_token, TLS skip): ${restarts} restarts; the leave was in the room ${tookMs} ms after the kill`,
      );
    } finally {
      await skipping.stop();
    }
  },
);

scenario(
  "scenario 4: the service restarted with Redis while a call is up resumes the job, and the leave still follows the killed client",
  async () => {
    const redis = await startRedis();
    redisServers.add(redis);
    const port = s().ports.redis;
    const env = { LIVEKIT_REDIS_URL: redis.url };
    const before = await startOurService("service-redis", "ca", port, env);
    const call = await startCall(before, "delegate");
    const { room, identity } = call.issued;
    await awaitLogged(
      before,
      "Webhook participant_joined",
      { room, identity },
      10_000,
    );
    await awaitLogged(before, "Restarted delayed event", { identity }, 10_000);

    const stored = await redis.withClient((c) => c.hGetAll("lk-jwt:jobs"));
    const value = stored[JSON.stringify([room, identity])];
    assert.ok(value, `the job is in Redis: ${JSON.stringify(stored)}`);
    const record = JSON.parse(value);
    assert.equal(record.Params.DelayId, call.delayId);
    assert.equal(record.Params.DelayTimeout, DELAY_MS * 1_000_000);

    // Stop right after a restart of the delayed event, as a deploy may: the
    // new process has the rest of the delay (10 s) to take over.
    const restartsSoFar =
      logged(before, "Restarted delayed event", { identity }).length;
    await awaitLogged(
      before,
      "Restarted delayed event",
      { identity },
      DELAY_MS,
      restartsSoFar,
    );
    const stoppedAt = Date.now();
    assert.equal((await before.stop("SIGTERM")).code, 0);
    const after = await startOurService("service-redis", "ca", port, env);
    await awaitLogged(
      after,
      "Restored delayed-leave jobs",
      { resumed: 1 },
      5_000,
    );
    await awaitLogged(after, "Restarted delayed event", { identity }, DELAY_MS);
    const takeOverMs = Date.now() - stoppedAt;

    // Longer than the delay: only the new process can have kept it alive.
    await assertStaysInCall(call, DELAY_MS + 5_000);
    const tookMs = await killAndAwaitLeave(call);
    await assertServiceSentLeave(after, call, before);
    await poll("the job to leave Redis", async () => {
      const left = await redis.withClient((c) => c.hGetAll("lk-jwt:jobs"));
      return left[JSON.stringify([room, identity])] === undefined
        ? true
        : undefined;
    }, 5_000);
    report.push(
      `scenario 4 (Redis): the new process restarted the delayed event ${takeOverMs} ms after the old one stopped; the leave was in the room ${tookMs} ms after the kill`,
    );
  },
);

scenario(
  "without the test CA in SSL_CERT_FILE nor the TLS skip, the homeserver's certificate is refused (401)",
  async () => {
    const strict = await startOurService("service-no-ca", "none", 0);
    try {
      const user = await s().fullAccess.register("untrusted");
      const { status, body } = await strict.post(
        "/get_token",
        tokenRequest(user, await user.openIdToken(), "!any:example", "m"),
      );
      assert.equal(status, 401, JSON.stringify(body));
      assert.equal(body.errcode, "M_UNAUTHORIZED");
    } finally {
      await strict.stop();
    }
  },
);
