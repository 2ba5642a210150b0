/**
 * Tests of deploy/systemd: the unit is hardened, hands the API secret over as
 * a credential, and systemd itself accepts it (systemd-analyze verify and an
 * offline security score) where systemd-analyze is installed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { findTool, ROOT, run, testWith } from "./_tools.ts";

const UNIT_FILE = join(ROOT, "deploy", "systemd", "lk-jwt-service.service");
const ENV_EXAMPLE = join(ROOT, "deploy", "systemd", "env.example");
const UNIT_NAME = "lk-jwt-service.service";
const systemdAnalyze = findTool("systemd-analyze", {
  install: "apt-get install systemd",
});

/** A unit file: section name -> key -> every value given, in order. */
type Unit = Map<string, Map<string, string[]>>;

/** Parses systemd's ini dialect: sections, repeated keys, `\` continuations. */
function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  const lines = text.replace(/\\\n/g, " ").split("\n");
  for (const raw of lines) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = line.match(/^\[(.+)\]$/);
    if (header) {
      section = new Map();
      unit.set(header[1]!, section);
      continue;
    }
    const eq = line.indexOf("=");
    assert.ok(section && eq > 0, `not a key=value line in a section: ${line}`);
    const key = line.slice(0, eq).trim();
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return unit;
}

const unit = parseUnit(await Deno.readTextFile(UNIT_FILE));

function values(section: string, key: string): string[] {
  return unit.get(section)?.get(key) ?? [];
}

/** The single value of a key; fails when it is missing or given twice. */
function value(section: string, key: string): string {
  const all = values(section, key);
  assert.equal(all.length, 1, `[${section}] ${key}= given ${all.length} times`);
  return all[0]!;
}

Deno.test("the unit starts /usr/local/bin/lk-jwt-service after the network is up", () => {
  assert.equal(value("Service", "ExecStart"), "/usr/local/bin/lk-jwt-service");
  assert.equal(value("Unit", "Wants"), "network-online.target");
  assert.equal(value("Unit", "After"), "network-online.target");
  assert.equal(value("Install", "WantedBy"), "multi-user.target");
  assert.equal(value("Service", "Restart"), "on-failure");
});

Deno.test("the unit reads its settings from /etc/lk-jwt-service/env", () => {
  assert.equal(
    value("Service", "EnvironmentFile"),
    "/etc/lk-jwt-service/env",
  );
});

Deno.test("the unit passes the API secret as a credential file, never inline", () => {
  assert.equal(
    value("Service", "LoadCredential"),
    "livekit-secret:/etc/lk-jwt-service/secret",
  );
  assert.deepEqual(values("Service", "Environment"), [
    "LIVEKIT_SECRET_FROM_FILE=%d/livekit-secret",
  ]);
  const text = Deno.readTextFileSync(UNIT_FILE);
  assert.doesNotMatch(text, /^\s*Environment=.*LIVEKIT_SECRET=/m);
});

Deno.test("the unit runs as a dynamic unprivileged user with no capabilities", () => {
  assert.equal(value("Service", "DynamicUser"), "yes");
  assert.equal(
    values("Service", "User").length,
    0,
    "User= would defeat DynamicUser",
  );
  assert.equal(value("Service", "NoNewPrivileges"), "yes");
  // An empty CapabilityBoundingSet= drops every capability.
  assert.equal(value("Service", "CapabilityBoundingSet"), "");
  assert.equal(value("Service", "AmbientCapabilities"), "");
  assert.equal(value("Service", "RestrictSUIDSGID"), "yes");
});

Deno.test("the unit sees a read-only system with private /tmp, /dev and no homes", () => {
  assert.equal(value("Service", "ProtectSystem"), "strict");
  assert.equal(value("Service", "ProtectHome"), "yes");
  assert.equal(value("Service", "PrivateTmp"), "yes");
  assert.equal(value("Service", "PrivateDevices"), "yes");
  assert.equal(value("Service", "UMask"), "0077");
  assert.equal(values("Service", "ReadWritePaths").length, 0);
});

Deno.test("the unit keeps the kernel, clock, hostname and cgroups out of reach", () => {
  for (
    const key of [
      "ProtectKernelTunables",
      "ProtectKernelModules",
      "ProtectKernelLogs",
      "ProtectControlGroups",
      "ProtectClock",
      "ProtectHostname",
      "LockPersonality",
      "RestrictRealtime",
      "RestrictNamespaces",
      "PrivateUsers",
    ]
  ) {
    assert.equal(value("Service", key), "yes", key);
  }
});

Deno.test("the unit may open IP and local sockets only", () => {
  const families = value("Service", "RestrictAddressFamilies").split(/\s+/);
  assert.deepEqual(families.sort(), ["AF_INET", "AF_INET6", "AF_UNIX"]);
});

Deno.test("the unit filters system calls to the service set for the native ABI", () => {
  assert.equal(value("Service", "SystemCallArchitectures"), "native");
  const filters = values("Service", "SystemCallFilter");
  assert.ok(filters.includes("@system-service"), filters.join(" | "));
  const denied = filters.find((f) => f.startsWith("~"))?.slice(1).split(/\s+/);
  assert.ok(denied?.includes("@privileged"), "~@privileged is missing");
  assert.ok(denied?.includes("@mount"), "~@mount is missing");
});

Deno.test("the unit leaves MemoryDenyWriteExecute off, which the JIT needs", () => {
  // With MemoryDenyWriteExecute=yes the JavaScript engine cannot start.
  assert.equal(values("Service", "MemoryDenyWriteExecute").length, 0);
});

Deno.test("env.example sets only variables the service reads, and no secret", async () => {
  const known = new Set([
    "LIVEKIT_URL",
    "LIVEKIT_KEY",
    "LIVEKIT_KEY_FROM_FILE",
    "LIVEKIT_KEY_FILE",
    "LIVEKIT_JWT_BIND",
    "LIVEKIT_FULL_ACCESS_HOMESERVERS",
    "LIVEKIT_INSECURE_SKIP_VERIFY_TLS",
    "LIVEKIT_LOG_LEVEL",
    "LIVEKIT_LOG_FORMAT",
    "LIVEKIT_CS_API_URL_OVERRIDES",
    "LIVEKIT_REDIS_URL",
    "LIVEKIT_REDIS_URL_FROM_FILE",
    "LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS",
    "LIVEKIT_METRICS_BIND",
    "LIVEKIT_MULTI_REPLICA",
    "SSL_CERT_FILE",
  ]);
  const text = await Deno.readTextFile(ENV_EXAMPLE);
  const set = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = line.match(/^#?([A-Z_]+)=(.*)$/);
    if (!m) continue;
    assert.ok(known.has(m[1]!), `unknown variable ${m[1]} in env.example`);
    if (!line.startsWith("#")) set.set(m[1]!, m[2]!);
  }
  for (
    const required of [
      "LIVEKIT_URL",
      "LIVEKIT_KEY",
      "LIVEKIT_FULL_ACCESS_HOMESERVERS",
    ]
  ) {
    assert.ok(set.has(required), `${required} is not set in env.example`);
  }
  assert.equal(set.get("LIVEKIT_JWT_BIND"), "127.0.0.1:8080");
});

/**
 * A throw-away root holding the unit, a stand-in executable at the ExecStart
 * path and systemd's own units, so that systemd-analyze checks the shipped
 * file unchanged without installing anything on the host.
 */
async function makeRoot(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "lk-systemd-root-" });
  await Deno.mkdir(join(root, "usr/local/bin"), { recursive: true });
  await Deno.mkdir(join(root, "etc/systemd/system"), { recursive: true });
  await Deno.mkdir(join(root, "usr/lib/systemd"), { recursive: true });
  const bin = join(root, "usr/local/bin/lk-jwt-service");
  await Deno.writeTextFile(bin, "#!/bin/sh\nexit 0\n");
  await Deno.chmod(bin, 0o755);
  await Deno.copyFile(UNIT_FILE, join(root, "etc/systemd/system", UNIT_NAME));
  for (const dir of ["/usr/lib/systemd/system", "/lib/systemd/system"]) {
    try {
      await Deno.stat(dir);
    } catch {
      continue;
    }
    const copied = await run("cp", [
      "-a",
      dir,
      join(root, "usr/lib/systemd/"),
    ]);
    assert.equal(copied.code, 0, copied.stderr);
    break;
  }
  return root;
}

testWith(
  [systemdAnalyze],
  "systemd-analyze verify accepts the unit without a warning",
  async () => {
    const root = await makeRoot();
    try {
      const out = await run(systemdAnalyze.path!, [
        "verify",
        `--root=${root}`,
        UNIT_NAME,
      ]);
      assert.equal(out.code, 0, out.stderr);
      // verify exits 0 on unknown keys, so any output is a finding.
      assert.equal(out.stderr.trim() + out.stdout.trim(), "");
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
  { optionalInCI: true },
);

testWith(
  [systemdAnalyze],
  "systemd-analyze security rates the unit's exposure 2.0 or lower",
  async () => {
    const root = await makeRoot();
    try {
      const out = await run(systemdAnalyze.path!, [
        "security",
        "--offline=yes",
        "--threshold=20",
        `--root=${root}`,
        UNIT_NAME,
      ], { env: { SYSTEMD_COLORS: "0" } });
      const score = out.stdout.match(
        /Overall exposure level for \S+: ([\d.]+)/,
      );
      assert.ok(score, `no exposure level in:\n${out.stdout}${out.stderr}`);
      assert.ok(Number(score[1]) <= 2.0, `exposure ${score[1]} > 2.0`);
      assert.equal(out.code, 0, out.stderr);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
  { optionalInCI: true },
);
