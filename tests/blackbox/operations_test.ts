/**
 * @module Black-box tests of the operations features: metrics, request IDs,
 * JSON logs, limits, the circuit breaker and graceful shutdown.
 */

import assert from "node:assert/strict";
import { freePort, startService } from "../_utils.ts";
import { startWorld, type World } from "../_world.ts";

let world: World;

Deno.test.beforeAll(async () => {
  world = await startWorld();
});

Deno.test.afterAll(async () => {
  await world.close();
});

const sanitizers = { sanitizeOps: false, sanitizeResources: false };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format into samples; throws on a line it cannot read. */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (
      const [, key, value] of (match[2] ?? "").matchAll(
        /(\w+)="((?:[^"\\]|\\.)*)"/g,
      )
    ) {
      labels[key!] = value!;
    }
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

function value(
  samples: Sample[],
  name: string,
  labels: Record<string, string> = {},
): number {
  return samples.filter((s) =>
    s.name === name &&
    Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  ).reduce((sum, s) => sum + s.value, 0);
}

async function scrape(url: string): Promise<Sample[]> {
  const response = await fetch(`${url}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain/);
  return parseMetrics(await response.text());
}

Deno.test({
  name:
    "/metrics counts requests, outgoing calls and jobs, with bounded labels",
  ...sanitizers,
  async fn() {
    const service = await startService(world.env());
    try {
      const before = await scrape(service.url);
      for (let i = 0; i < 3; i++) {
        assert.equal(
          (await service.post("/get_token", world.tokenRequest())).status,
          200,
        );
      }
      assert.equal((await service.post("/get_token", "{")).status, 400);
      await (await service.fetch(`/random/${crypto.randomUUID()}`)).body
        ?.cancel();
      const delayed = world.tokenRequest({
        delay: { id: "metrics-delay", timeoutMs: 60_000 },
      });
      assert.equal(
        (await service.post("/delegate_delayed_leave", delayed)).status,
        200,
      );
      const after = await scrape(service.url);

      const ok = {
        name: "lk_jwt_http_requests_total",
        labels: { route: "/get_token", status: "200" },
      };
      assert.equal(
        value(after, ok.name, ok.labels) - value(before, ok.name, ok.labels),
        3,
      );
      assert.equal(
        value(after, "lk_jwt_http_requests_total", {
          route: "/get_token",
          status: "400",
        }),
        1,
      );
      assert.equal(
        value(after, "lk_jwt_http_requests_total", { route: "other" }),
        1,
      );
      assert.ok(
        value(after, "lk_jwt_http_request_duration_seconds_count", {
          route: "/get_token",
        }) >= 4,
      );
      assert.ok(
        value(after, "lk_jwt_outgoing_requests_total", {
          target: "userinfo",
          outcome: "ok",
        }) >= 4,
      );
      assert.ok(
        value(after, "lk_jwt_outgoing_requests_total", {
          target: "twirp_create_room",
          outcome: "ok",
        }) >= 3,
      );
      assert.ok(
        value(after, "lk_jwt_outgoing_requests_total", {
          target: "client_discovery",
        }) >= 1,
      );
      assert.equal(
        value(after, "lk_jwt_delayed_leave_jobs", { state: "Waiting" }),
        1,
      );
      assert.ok(value(after, "process_resident_memory_bytes") > 0);

      // Labels come from fixed sets: no user, token, room or path leaks into them.
      const labelValues = after.flatMap((s) => Object.values(s.labels));
      for (const v of labelValues) {
        assert.ok(
          !v.includes("@") && !v.includes("token-") && !v.includes("!room"),
          v,
        );
        assert.ok(!v.includes("/random/"), v);
      }
      const routes = new Set(
        after.filter((s) => s.name === "lk_jwt_http_requests_total").map((s) =>
          s.labels.route ?? ""
        ),
      );
      for (const route of routes) {
        assert.ok(
          [
            "/get_token",
            "/sfu/get",
            "/delegate_delayed_leave",
            "/sfu_webhook",
            "/healthz",
            "/readyz",
            "/metrics",
            "other",
          ].includes(route),
          route,
        );
      }
    } finally {
      await service.stop();
    }
  },
});

Deno.test({
  name: "LIVEKIT_METRICS_BIND moves /metrics off the main listener",
  ...sanitizers,
  async fn() {
    const port = freePort();
    const service = await startService(
      world.env({ LIVEKIT_METRICS_BIND: `127.0.0.1:${port}` }),
    );
    try {
      const main = await service.fetch("/metrics");
      assert.equal(main.status, 404);
      await main.body?.cancel();
      const samples = await scrape(`http://127.0.0.1:${port}`);
      assert.ok(samples.some((s) => s.name === "lk_jwt_http_requests_total"));
    } finally {
      await service.stop();
    }
  },
});

Deno.test({
  name:
    "a request ID is echoed or made, and is on every JSON log line of its request",
  ...sanitizers,
  async fn() {
    const service = await startService(
      world.env({ LIVEKIT_LOG_FORMAT: "json" }),
    );
    try {
      const body = world.tokenRequest();
      (body.openid_token as Record<string, string>).access_token = "not-known";
      const response = await service.fetch("/get_token", {
        method: "POST",
        headers: { "X-Request-Id": "req-abc.123" },
        body: JSON.stringify(body),
      });
      assert.equal(response.status, 401);
      await response.body?.cancel();
      assert.equal(response.headers.get("x-request-id"), "req-abc.123");
      await service.waitForLog(/req-abc\.123/);
      const lines = service.logLines.filter((l) => l.startsWith("{")).map((l) =>
        JSON.parse(l)
      );
      const mine = lines.filter((l) => l.requestId === "req-abc.123");
      assert.ok(
        mine.some((l) => /OpenID verification failed/.test(l.msg)),
        JSON.stringify(lines),
      );

      const made = await service.fetch("/healthz", {
        headers: { "X-Request-Id": "bad id with spaces" },
      });
      await made.body?.cancel();
      assert.match(made.headers.get("x-request-id")!, /^[0-9a-f-]{36}$/);
    } finally {
      await service.stop();
    }
  },
});

Deno.test({
  name: "a body over LIVEKIT_MAX_BODY_BYTES answers 413 M_TOO_LARGE",
  ...sanitizers,
  async fn() {
    const service = await startService(
      world.env({ LIVEKIT_MAX_BODY_BYTES: "1024" }),
    );
    try {
      const calls = world.hs.requests.length;
      const body = {
        ...world.tokenRequest(),
        room_id: "!" + "x".repeat(2000) + ":example.com",
      };
      const { status, body: answer } = await service.post("/get_token", body);
      assert.equal(status, 413);
      assert.equal(answer.errcode, "M_TOO_LARGE");
      assert.equal(world.hs.requests.length, calls);
      assert.equal(
        (await service.post("/get_token", world.tokenRequest())).status,
        200,
      );
    } finally {
      await service.stop();
    }
  },
});

Deno.test({
  name:
    "the per-client rate limit answers 429 M_LIMIT_EXCEEDED with retry hints",
  ...sanitizers,
  async fn() {
    const service = await startService(
      world.env({
        LIVEKIT_RATE_LIMIT_PER_SECOND: "1",
        LIVEKIT_RATE_LIMIT_BURST: "2",
      }),
    );
    try {
      const statuses = [];
      let limited: Response | undefined;
      for (let i = 0; i < 3; i++) {
        // A forged X-Forwarded-For from an untrusted peer changes nothing.
        const response = await service.fetch("/get_token", {
          method: "POST",
          headers: { "X-Forwarded-For": `10.0.0.${i}` },
          body: JSON.stringify(world.tokenRequest()),
        });
        statuses.push(response.status);
        if (response.status === 429) limited = response;
        else await response.body?.cancel();
      }
      assert.deepEqual(statuses, [200, 200, 429]);
      const answer = await limited!.json();
      assert.equal(answer.errcode, "M_LIMIT_EXCEEDED");
      assert.ok(answer.retry_after_ms > 0 && answer.retry_after_ms <= 1000);
      assert.equal(limited!.headers.get("retry-after"), "1");
      const health = await service.fetch("/healthz");
      assert.equal(health.status, 200, "only the token routes are limited");
      await health.body?.cancel();
      await sleep(1_100);
      assert.equal(
        (await service.post("/get_token", world.tokenRequest())).status,
        200,
      );
    } finally {
      await service.stop();
    }
  },
});

Deno.test({
  name: "behind a trusted proxy each X-Forwarded-For client has its own bucket",
  ...sanitizers,
  async fn() {
    const service = await startService(world.env({
      LIVEKIT_RATE_LIMIT_PER_SECOND: "1",
      LIVEKIT_RATE_LIMIT_BURST: "1",
      LIVEKIT_TRUSTED_PROXIES: "127.0.0.0/8, ::1",
    }));
    try {
      const post = async (client: string) => {
        const response = await service.fetch("/get_token", {
          method: "POST",
          headers: { "X-Forwarded-For": `${client}, 127.0.0.1` },
          body: JSON.stringify(world.tokenRequest()),
        });
        await response.body?.cancel();
        return response.status;
      };
      assert.equal(await post("203.0.113.1"), 200);
      assert.equal(await post("203.0.113.2"), 200);
      assert.equal(await post("203.0.113.1"), 429);
    } finally {
      await service.stop();
    }
  },
});

Deno.test({
  name:
    "a hanging homeserver opens its circuit: fast 503s, then it closes once it answers",
  ...sanitizers,
  async fn() {
    const service = await startService(world.env({
      LIVEKIT_HOMESERVER_TIMEOUT_SECONDS: "1",
      LIVEKIT_BREAKER_FAILURES: "2",
      LIVEKIT_BREAKER_COOLDOWN_SECONDS: "2",
    }));
    world.hs.hang = true;
    try {
      for (let i = 0; i < 2; i++) {
        const started = Date.now();
        assert.equal(
          (await service.post("/get_token", world.tokenRequest())).status,
          401,
        );
        assert.ok(Date.now() - started >= 900, "waited for the timeout");
      }
      const started = Date.now();
      const response = await service.fetch("/get_token", {
        method: "POST",
        body: JSON.stringify(world.tokenRequest()),
      });
      assert.ok(Date.now() - started < 200, "answered at once while open");
      assert.equal(response.status, 503);
      assert.equal((await response.json()).errcode, "M_UNKNOWN");
      const retryAfter = Number(response.headers.get("retry-after"));
      assert.ok(
        retryAfter >= 1 && retryAfter <= 2,
        `Retry-After ${retryAfter}`,
      );
      const other = await service.post(
        "/get_token",
        world.tokenRequest({ restricted: true }),
      );
      assert.equal(other.status, 200, "other homeservers are not affected");

      const open = await scrape(service.url);
      assert.equal(value(open, "lk_jwt_circuit_breakers_open"), 1);
      assert.ok(value(open, "lk_jwt_circuit_breaker_rejections_total") >= 1);

      world.hs.hang = false;
      await sleep(2_100);
      assert.equal(
        (await service.post("/get_token", world.tokenRequest())).status,
        200,
      );
      assert.equal(
        (await service.post("/get_token", world.tokenRequest())).status,
        200,
      );
      assert.equal(
        value(await scrape(service.url), "lk_jwt_circuit_breakers_open"),
        0,
      );
    } finally {
      world.hs.hang = false;
      await service.stop();
    }
  },
});

Deno.test({
  name: "SIGTERM during a slow request lets it complete, then exits 0",
  ...sanitizers,
  async fn() {
    const service = await startService(world.env());
    world.hs.hang = true;
    try {
      const inFlight = service.post("/get_token", world.tokenRequest());
      await world.hs.waitFor(
        () => world.hs.hang && world.hs.requests.length > 0,
        2_000,
      );
      await sleep(200);
      const exit = service.stop("SIGTERM");
      await service.waitForLog(/Received SIGTERM/);
      const refused = await fetch(`${service.url}/healthz`).then(
        (r) => r.body?.cancel().then(() => "accepted"),
        () => "refused",
      );
      assert.equal(refused, "refused", "no new connections while draining");
      world.hs.hang = false;
      const { status } = await inFlight;
      assert.equal(status, 200);
      assert.equal((await exit).code, 0);
    } finally {
      world.hs.hang = false;
    }
  },
});
