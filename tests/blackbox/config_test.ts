/** @module Black-box tests of the configuration (SPEC 1): each refusal, by starting the real process. */

import assert from "node:assert/strict";
import {
  freePort,
  ownLines,
  runServiceToExit,
  startService,
} from "../_utils.ts";

const GOOD: Record<string, string> = {
  LIVEKIT_URL: "ws://127.0.0.1:7880",
  LIVEKIT_KEY: "devkey",
  LIVEKIT_SECRET: "0123456789abcdef0123456789abcdef",
  LIVEKIT_FULL_ACCESS_HOMESERVERS: "example.com",
  LIVEKIT_JWT_BIND: "127.0.0.1:0",
};

async function tempFile(content: string): Promise<string> {
  const path = await Deno.makeTempFile();
  await Deno.writeTextFile(path, content);
  return path;
}

/** Each case: the environment change, and the variable the one printed line must name. */
const REFUSALS: [string, Record<string, string | undefined>, RegExp][] = [
  ["LIVEKIT_URL is missing", { LIVEKIT_URL: undefined }, /LIVEKIT_URL/],
  ["LIVEKIT_URL is not a URL", { LIVEKIT_URL: "not a url" }, /LIVEKIT_URL/],
  ["LIVEKIT_KEY is missing", { LIVEKIT_KEY: undefined }, /LIVEKIT_KEY/],
  [
    "LIVEKIT_SECRET is missing",
    { LIVEKIT_SECRET: undefined },
    /LIVEKIT_SECRET/,
  ],
  [
    "LIVEKIT_SECRET is only spaces and newlines",
    { LIVEKIT_SECRET: " \r\n " },
    /LIVEKIT_SECRET/,
  ],
  [
    "LIVEKIT_KEY_FROM_FILE names no file",
    { LIVEKIT_KEY_FROM_FILE: "/nonexistent/key" },
    /LIVEKIT_KEY_FROM_FILE/,
  ],
  [
    "LIVEKIT_SECRET_FROM_FILE names no file",
    { LIVEKIT_SECRET_FROM_FILE: "/nonexistent/secret" },
    /LIVEKIT_SECRET_FROM_FILE/,
  ],
  [
    "LIVEKIT_KEY_FILE names no file",
    { LIVEKIT_KEY_FILE: "/nonexistent/keys" },
    /LIVEKIT_KEY_FILE/,
  ],
  [
    "LIVEKIT_JWT_BIND and LIVEKIT_JWT_PORT are both set",
    { LIVEKIT_JWT_PORT: "8081" },
    /LIVEKIT_JWT_BIND and LIVEKIT_JWT_PORT/,
  ],
  [
    "LIVEKIT_JWT_BIND has no port",
    { LIVEKIT_JWT_BIND: "localhost" },
    /LIVEKIT_JWT_BIND/,
  ],
  [
    "LIVEKIT_JWT_PORT is not a number",
    { LIVEKIT_JWT_BIND: undefined, LIVEKIT_JWT_PORT: "http" },
    /LIVEKIT_JWT_PORT/,
  ],
  [
    "LIVEKIT_FULL_ACCESS_HOMESERVERS is missing",
    { LIVEKIT_FULL_ACCESS_HOMESERVERS: undefined },
    /LIVEKIT_FULL_ACCESS_HOMESERVERS/,
  ],
  [
    "LIVEKIT_FULL_ACCESS_HOMESERVERS is only separators",
    { LIVEKIT_FULL_ACCESS_HOMESERVERS: " , ,\t" },
    /LIVEKIT_FULL_ACCESS_HOMESERVERS/,
  ],
  [
    "LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS is negative",
    { LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS: "-5" },
    /LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS/,
  ],
  [
    "LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS is not a number",
    { LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS: "often" },
    /LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS/,
  ],
  [
    "a LIVEKIT_CS_API_URL_OVERRIDES entry has no URL",
    { LIVEKIT_CS_API_URL_OVERRIDES: "example.com=" },
    /LIVEKIT_CS_API_URL_OVERRIDES/,
  ],
  [
    "a LIVEKIT_CS_API_URL_OVERRIDES entry has no server name",
    { LIVEKIT_CS_API_URL_OVERRIDES: " =https://matrix.example.com" },
    /LIVEKIT_CS_API_URL_OVERRIDES/,
  ],
  [
    "a LIVEKIT_CS_API_URL_OVERRIDES entry has no =",
    { LIVEKIT_CS_API_URL_OVERRIDES: "a=https://a.example,b" },
    /LIVEKIT_CS_API_URL_OVERRIDES/,
  ],
  ["LIVEKIT_REDIS_URL is not a redis URL", {
    LIVEKIT_REDIS_URL: "http://localhost",
  }, /LIVEKIT_REDIS_URL/],
  [
    "LIVEKIT_MULTI_REPLICA is on without Redis",
    { LIVEKIT_MULTI_REPLICA: "true" },
    /LIVEKIT_MULTI_REPLICA needs LIVEKIT_REDIS_URL/,
  ],
  [
    "LIVEKIT_MULTI_REPLICA is not a boolean",
    { LIVEKIT_MULTI_REPLICA: "maybe" },
    /LIVEKIT_MULTI_REPLICA/,
  ],
  [
    "LIVEKIT_MAX_BODY_BYTES is too small",
    { LIVEKIT_MAX_BODY_BYTES: "10" },
    /LIVEKIT_MAX_BODY_BYTES/,
  ],
  [
    "LIVEKIT_RATE_LIMIT_PER_SECOND is not a number",
    { LIVEKIT_RATE_LIMIT_PER_SECOND: "fast" },
    /LIVEKIT_RATE_LIMIT_PER_SECOND/,
  ],
  [
    "a LIVEKIT_TRUSTED_PROXIES entry is not an address",
    { LIVEKIT_TRUSTED_PROXIES: "10.0.0.0/8, proxy.local" },
    /LIVEKIT_TRUSTED_PROXIES/,
  ],
  [
    "LIVEKIT_HOMESERVER_TIMEOUT_SECONDS is 0",
    { LIVEKIT_HOMESERVER_TIMEOUT_SECONDS: "0" },
    /LIVEKIT_HOMESERVER_TIMEOUT_SECONDS/,
  ],
  [
    "LIVEKIT_METRICS_BIND has no port",
    { LIVEKIT_METRICS_BIND: "0.0.0.0" },
    /LIVEKIT_METRICS_BIND/,
  ],
  [
    "LIVEKIT_REDIS_URL_FROM_FILE names no file",
    { LIVEKIT_REDIS_URL_FROM_FILE: "/nonexistent/redis-url" },
    /LIVEKIT_REDIS_URL_FROM_FILE/,
  ],
  [
    "LIVEKIT_LOG_FORMAT is unknown",
    { LIVEKIT_LOG_FORMAT: "xml" },
    /LIVEKIT_LOG_FORMAT/,
  ],
];

for (const [what, change, pattern] of REFUSALS) {
  Deno.test(`the service refuses to start when ${what}`, async () => {
    const env: Record<string, string> = { ...GOOD };
    for (const [name, value] of Object.entries(change)) {
      if (value === undefined) delete env[name];
      else env[name] = value;
    }
    const { code, stderr } = await runServiceToExit(env);
    assert.notEqual(code, 0);
    const lines = ownLines(stderr);
    assert.equal(lines.length, 1, `one line, got:\n${stderr}`);
    assert.match(lines[0]!, pattern);
    assert.ok(
      !lines[0]!.includes(GOOD.LIVEKIT_SECRET!),
      "no secret in the message",
    );
  });
}

Deno.test("the service refuses a key file that is not key:secret", async () => {
  const path = await tempFile("only-a-key\n");
  try {
    const env = { ...GOOD, LIVEKIT_KEY_FILE: path };
    const { code, stderr } = await runServiceToExit(env);
    assert.notEqual(code, 0);
    assert.match(ownLines(stderr)[0]!, /LIVEKIT_KEY_FILE/);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("the service refuses a key file with more than one colon", async () => {
  const path = await tempFile("key:secret:extra");
  try {
    const { code, stderr } = await runServiceToExit({
      ...GOOD,
      LIVEKIT_KEY_FILE: path,
    });
    assert.notEqual(code, 0);
    assert.match(ownLines(stderr)[0]!, /LIVEKIT_KEY_FILE/);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("the service refuses to start when Redis cannot be reached", async () => {
  const { code, stderr } = await runServiceToExit({
    ...GOOD,
    LIVEKIT_REDIS_URL: "redis://127.0.0.1:1",
  });
  assert.notEqual(code, 0);
  const last = ownLines(stderr).at(-1)!;
  assert.match(last, /Redis/);
  assert.match(last, /LIVEKIT_REDIS_URL/);
});

Deno.test("the service starts with a key file, trimmed, and warns about nothing else", async () => {
  const path = await tempFile("filekey:0123456789abcdef0123456789abcdef\r\n");
  const env: Record<string, string> = { ...GOOD, LIVEKIT_KEY_FILE: path };
  delete env.LIVEKIT_KEY;
  delete env.LIVEKIT_SECRET;
  const service = await startService(env);
  try {
    const response = await service.fetch("/healthz");
    assert.equal(response.status, 200);
    await response.body?.cancel();
    assert.ok(
      !service.logs.includes("0123456789abcdef"),
      "secret never logged",
    );
  } finally {
    await service.stop();
    await Deno.remove(path);
  }
});

Deno.test("the service reads key and secret from *_FROM_FILE", async () => {
  const keyPath = await tempFile(" fromfilekey \n");
  const secretPath = await tempFile("0123456789abcdef0123456789abcdef\n");
  const env: Record<string, string> = {
    ...GOOD,
    LIVEKIT_KEY_FROM_FILE: keyPath,
    LIVEKIT_SECRET_FROM_FILE: secretPath,
  };
  delete env.LIVEKIT_KEY;
  delete env.LIVEKIT_SECRET;
  const service = await startService(env);
  try {
    const response = await service.fetch("/healthz");
    assert.equal(response.status, 200);
    await response.body?.cancel();
  } finally {
    await service.stop();
    await Deno.remove(keyPath);
    await Deno.remove(secretPath);
  }
});

Deno.test("the service warns about a short secret, a deprecated port and an unknown log level", async () => {
  const env: Record<string, string> = {
    ...GOOD,
    LIVEKIT_SECRET: "short",
    LIVEKIT_LOG_LEVEL: "chatty",
  };
  const service = await startService(env);
  try {
    assert.match(
      service.logs,
      /level=warn msg="the LiveKit API secret is only 5 characters long/,
    );
    assert.match(
      service.logs,
      /level=warn msg="LIVEKIT_LOG_LEVEL \\"chatty\\" is not one of/,
    );
    assert.ok(!/msg=short|=short\b/.test(service.logs), "secret never logged");
  } finally {
    await service.stop();
  }
  const port = freePort();
  const env2: Record<string, string> = {
    ...GOOD,
    LIVEKIT_JWT_PORT: String(port),
  };
  delete env2.LIVEKIT_JWT_BIND;
  const deprecated = await startService({ ...env2, LIVEKIT_JWT_BIND: "" });
  try {
    assert.equal(deprecated.port, port);
    assert.match(deprecated.logs, /LIVEKIT_JWT_PORT is deprecated/);
  } finally {
    await deprecated.stop();
  }
});

Deno.test("LIVEKIT_LOG_LEVEL=error hides info lines; debug shows debug lines", async () => {
  const quiet = await startService({
    ...GOOD,
    LIVEKIT_LOG_LEVEL: "ERROR",
    LIVEKIT_JWT_BIND: `127.0.0.1:${freePort()}`,
  });
  await quiet.stop();
  assert.ok(!quiet.logs.includes("level=info"), quiet.logs);
  const chatty = await startService({ ...GOOD, LIVEKIT_LOG_LEVEL: "Debug" });
  try {
    const response = await chatty.fetch("/get_token", {
      method: "POST",
      body: "{}",
    });
    await response.body?.cancel();
    assert.match(chatty.logs, /level=info msg="Listening on/);
  } finally {
    await chatty.stop();
  }
});

Deno.test("LIVEKIT_LOG_FORMAT=json writes one JSON object per line", async () => {
  const service = await startService({ ...GOOD, LIVEKIT_LOG_FORMAT: "json" });
  await service.stop();
  const lines = ownLines(service.logs);
  assert.ok(lines.length >= 2);
  for (const line of lines) {
    const record = JSON.parse(line);
    assert.equal(typeof record.time, "string");
    assert.equal(typeof record.level, "string");
    assert.equal(typeof record.msg, "string");
  }
});

Deno.test("SIGTERM stops the service with exit code 0", async () => {
  const service = await startService(GOOD);
  const status = await service.stop("SIGTERM");
  assert.equal(status.code, 0);
  assert.match(service.logs, /Received SIGTERM/);
});
