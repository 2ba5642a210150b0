/**
 * @module `deno task bench`: starts the service as the release binary runs
 * it, a lean HTTPS homeserver and a Twirp SFU, drives load with wrk from a
 * process of its own, prints a table and writes `bench/results/<date>.json`.
 *
 *   deno task bench                      # the full run (a few minutes)
 *   deno task bench:smoke                # a few seconds; fails when figures are missing
 *   deno task bench --target http://127.0.0.1:8080 [--target-pid PID]
 *                                        # load a service that is already running
 *
 * Options: --seconds N (per /get_token run), --jobs N (also the in-process
 * job-heap count), --delay-timeout MS,
 * --phases hops,startup,tokens,v8,jobs, --out FILE, --profile FILE (a
 * .cpuprofile of the service over the /get_token runs), --service-root DIR
 * (run main.ts of another checkout, e.g. a prototype), --v8-flags VALUE
 * (instead of the start task's), --perf FILE (`perf record` of the service
 * over the /get_token runs, with V8's --perf-basic-prof), --env NAME=VALUE
 * (more environment for the service), --paths restricted,full and --conns 1,16,64
 * (which /get_token runs), and for --target:
 * --hs-port, --sfu-port, --ca-dir, --key, --secret, --wait-target SECONDS.
 */

import { parseArgs } from "node:util";
import { makeTestCa } from "../tests/_fakes/tls.ts";
import { runDelayedLeave } from "./delayed_leave.ts";
import { BenchHomeserver, BenchSfu } from "./fakes.ts";
import type { HopsConfig, HopsResult } from "./hops.ts";
import type { JobHeapConfig, JobHeapResult } from "./job_heap.ts";
import { memoryOf, ProcessSampler } from "./proc.ts";
import { inspectorPort, InspectorProfiler, summarize } from "./profile.ts";
import {
  checkTargets,
  markdown,
  type Results,
  type TokenRun,
} from "./report.ts";
import {
  configureService,
  externalTarget,
  serviceRoot,
  shippedV8Flags,
  spawnService,
  startTaskArgs,
  type Target,
} from "./service.ts";
import { checkWrk, runWrk } from "./wrk.ts";

const PHASES = ["hops", "startup", "tokens", "v8", "jobs"] as const;
type Phase = typeof PHASES[number];

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    smoke: { type: "boolean", default: false },
    target: { type: "string" },
    "target-pid": { type: "string" },
    "wait-target": { type: "string", default: "120" },
    "hs-port": { type: "string", default: "18448" },
    "sfu-port": { type: "string", default: "17880" },
    "ca-dir": { type: "string" },
    key: { type: "string", default: "bench-key" },
    secret: {
      type: "string",
      default: "bench-secret-that-is-long-enough-0123456789",
    },
    seconds: { type: "string" },
    jobs: { type: "string" },
    "delay-timeout": { type: "string" },
    phases: { type: "string" },
    profile: { type: "string" },
    perf: { type: "string" },
    env: { type: "string", multiple: true },
    "service-root": { type: "string" },
    "v8-flags": { type: "string" },
    paths: { type: "string" },
    conns: { type: "string" },
    out: { type: "string" },
  },
});

configureService({
  ...(args["service-root"] ? { root: args["service-root"] } : {}),
  ...(args["v8-flags"] !== undefined ? { v8Flags: args["v8-flags"] } : {}),
});
// perf needs V8 to write a map of its JIT code (/tmp/perf-<pid>.map); the
// code log that comes with it goes to /tmp too, not into the checkout.
if (args.perf !== undefined) {
  configureService({
    ...(args["service-root"] ? { root: args["service-root"] } : {}),
    v8Flags: [
      shippedV8Flags(),
      "--perf-basic-prof",
      "--no-logfile-per-isolate",
      "--logfile=/tmp/lk-jwt-bench-v8.log",
    ].filter((f) => f !== "").join(","),
  });
}
const smoke = args.smoke;
const external = args.target !== undefined;
const phases = new Set<Phase>(
  (args.phases?.split(",") ?? PHASES).map((p) => {
    if (!(PHASES as readonly string[]).includes(p)) {
      throw new Error(`unknown phase ${p}`);
    }
    return p as Phase;
  }),
);
const seconds = Number(args.seconds ?? (smoke ? 1 : 8));
const warmSeconds = smoke ? 0 : 1;
const jobs = Number(args.jobs ?? (smoke ? 200 : 10_000));
const delayTimeoutMs = Number(args["delay-timeout"] ?? (smoke ? 1500 : 8000));
const apiKey = args.key!;
const apiSecret = args.secret!;
const log = (line: string) => console.error(`bench: ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (x: number, digits = 1) =>
  Math.round(x * 10 ** digits) / 10 ** digits;

await checkWrk();
const began = performance.now();

// A CA and a certificate for 127.0.0.1; kept in --ca-dir when given (so an
// external target keeps trusting it across runs), else thrown away.
const caDir = args["ca-dir"] ??
  (external
    ? `${Deno.env.get("TMPDIR") ?? "/tmp"}/lk-jwt-bench-ca`
    : undefined);
const { tls, cleanupCa } = await benchTls(caDir);

const hsPort = external ? Number(args["hs-port"]) : 0;
const hs = new BenchHomeserver({
  certPem: tls.certPem,
  keyPem: tls.keyPem,
  ports: [hsPort, external ? hsPort + 1 : 0],
});
const sfu = new BenchSfu(external ? Number(args["sfu-port"]) : 0);
const fullName = hs.serverName(0);
const restrictedName = hs.serverName(1);
const serviceEnv: Record<string, string> = {
  LIVEKIT_URL: sfu.url,
  LIVEKIT_KEY: apiKey,
  LIVEKIT_SECRET: apiSecret,
  LIVEKIT_FULL_ACCESS_HOMESERVERS: fullName,
  SSL_CERT_FILE: tls.caFile,
  LIVEKIT_LOG_LEVEL: "warn",
  ...Object.fromEntries(
    (args.env ?? []).map((
      e,
    ) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]),
  ),
};
log(
  `homeserver https://${fullName} (full access) and https://${restrictedName} (restricted), SFU ${sfu.url}`,
);

const results: Omit<Results, "targets"> = {
  date: new Date().toISOString(),
  mode: smoke ? "smoke" : "full",
  target: args.target ?? "started by the bench",
  machine: {
    cores: navigator.hardwareConcurrency,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
  },
  v8Flags: shippedV8Flags(),
  getToken: [],
  warnings: [],
  seconds: 0,
};

/** The test CA and a leaf for 127.0.0.1: reused from `dir`, or made (and kept there). */
async function benchTls(dir: string | undefined): Promise<{
  tls: { caFile: string; certPem: string; keyPem: string };
  cleanupCa: () => Promise<void>;
}> {
  const [caFile, certFile, keyFile] = ["ca.pem", "leaf.pem", "leaf.key"].map(
    (f) => `${dir}/${f}`,
  ) as [string, string, string];
  // The test CA's certificates live two days: reuse them for one.
  const isFresh = (path: string) => {
    try {
      const stat = Deno.statSync(path);
      return stat.isFile &&
        Date.now() - (stat.mtime?.getTime() ?? 0) < 24 * 3600_000;
    } catch {
      return false;
    }
  };
  if (dir !== undefined && [caFile, certFile, keyFile].every(isFresh)) {
    return {
      tls: {
        caFile,
        certPem: Deno.readTextFileSync(certFile),
        keyPem: Deno.readTextFileSync(keyFile),
      },
      cleanupCa: () => Promise.resolve(),
    };
  }
  const ca = await makeTestCa();
  const leaf = await ca.issue(["127.0.0.1"]);
  if (dir === undefined) {
    return { tls: { caFile: ca.caFile, ...leaf }, cleanupCa: ca.cleanup };
  }
  Deno.mkdirSync(dir, { recursive: true });
  Deno.writeTextFileSync(caFile, ca.caPem);
  Deno.writeTextFileSync(certFile, leaf.certPem);
  Deno.writeTextFileSync(keyFile, leaf.keyPem);
  await ca.cleanup();
  return { tls: { caFile, ...leaf }, cleanupCa: () => Promise.resolve() };
}

/** Runs `script` (next to this file) in a child process and parses its JSON output. */
async function child<T>(
  script: string,
  config: unknown,
  v8Flags: string[] = [],
): Promise<T> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...v8Flags.map((flag) => `--v8-flags=${flag}`),
      new URL(script, import.meta.url).pathname,
      JSON.stringify(config),
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`bench/${script} failed`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

function jobHeap(): Promise<JobHeapResult> {
  const config: JobHeapConfig = { jobs, root: serviceRoot() };
  return child("./job_heap.ts", config, ["--expose-gc"]);
}

function hops(): Promise<HopsResult> {
  const config: HopsConfig = {
    serverName: fullName,
    sfuUrl: sfu.url,
    caFile: tls.caFile,
    apiKey,
    apiSecret,
    seconds: smoke ? 0.1 : 1.5,
    concurrency: 64,
    root: serviceRoot(),
  };
  return child("./hops.ts", config);
}

async function tokenRun(
  target: Target,
  path: "restricted" | "full",
  connections: number,
  label = "",
): Promise<TokenRun> {
  const server = path === "full" ? fullName : restrictedName;
  const run = `${path[0]}${connections}x${Date.now().toString(36)}`;
  const wrk = (seconds: number, id: string) =>
    runWrk({
      url: target.url,
      script: "get_token.lua",
      scriptArgs: [server, id],
      connections,
      seconds,
    });
  if (warmSeconds > 0) await wrk(warmSeconds, `${run}w`);
  hs.resetConnections();
  sfu.resetConnections();
  const service = target.pid === undefined
    ? undefined
    : new ProcessSampler(target.pid);
  const fakes = new ProcessSampler("self");
  const result = await wrk(seconds, run);
  const s = service?.stop();
  const f = fakes.stop();
  const figures: TokenRun = {
    path,
    ...result,
    ...(s
      ? {
        serviceCpuPercent: round(s.cpuPercent),
        // Robust to other load on the machine, unlike req/s.
        serviceCpuUsPerRequest: Math.round(
          (s.cpuPercent / 100) * 1e6 / result.rps,
        ),
        serviceMaxRssMiB: round(s.maxRssMiB),
      }
      : {}),
    fakesCpuPercent: round(f.cpuPercent),
    // Everything else on the machine: other people's processes skew figures.
    otherCpuPercent: Math.max(
      0,
      Math.round(
        result.machineCpuPercent - (s?.cpuPercent ?? 0) - f.cpuPercent -
          result.wrkCpuPercent,
      ),
    ),
    hsConnections: hs.counters.connections,
    sfuConnections: sfu.counters.connections,
  };
  if (figures.otherCpuPercent >= 20) {
    results.warnings.push(
      `other processes used ${figures.otherCpuPercent} % CPU during /get_token ${path} at ${connections} connections${label}: its figures are low`,
    );
  }
  log(
    `/get_token ${path} c=${connections}: ${result.rps} req/s (${
      figures.serviceCpuUsPerRequest ?? "?"
    } µs service CPU each), p50 ${result.p50} p90 ${result.p90} p99 ${result.p99} ms, ${result.errors} errors; CPU % service ${
      s ? round(s.cpuPercent) : "?"
    }, fakes ${
      round(f.cpuPercent)
    }, wrk ${result.wrkCpuPercent}, other ${figures.otherCpuPercent}; new connections hs ${figures.hsConnections} sfu ${figures.sfuConnections}`,
  );
  return figures;
}

/** V8 heap committed and used, from the service's /metrics. */
async function heapMiB(
  url: string,
): Promise<{ heapTotalMiB?: number; heapUsedMiB?: number }> {
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    const gauge = (name: string) => {
      const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
      return m ? round(Number(m[1]) / 1048576) : undefined;
    };
    const total = gauge("nodejs_heap_size_total_bytes");
    const used = gauge("nodejs_heap_size_used_bytes");
    return {
      ...(total === undefined ? {} : { heapTotalMiB: total }),
      ...(used === undefined ? {} : { heapUsedMiB: used }),
    };
  } catch {
    return {};
  }
}

/** Runs `body`; when the service died meanwhile, says so with its last log lines. */
async function watching<T>(target: Target, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    // Give the exit a moment to be noticed.
    await sleep(200);
    const died = target.died();
    if (died !== undefined) throw new Error(`the service died: ${died}`);
    throw err;
  }
}

async function startTarget(extraFlags: string[] = []): Promise<Target> {
  if (external) {
    const pid = args["target-pid"] === undefined
      ? undefined
      : Number(args["target-pid"]);
    return await externalTarget(
      args.target!,
      pid,
      Number(args["wait-target"]) * 1000,
    );
  }
  return await spawnService({ env: serviceEnv, extraFlags });
}

try {
  if (external) {
    console.error(
      [
        "bench: the target must run with this environment (its own LIVEKIT_JWT_BIND):",
        ...Object.entries(serviceEnv).map(([k, v]) => `  ${k}=${v}`),
        `bench: waiting up to ${
          args["wait-target"]
        } s for ${args.target}/healthz`,
      ].join("\n"),
    );
  }

  if (phases.has("hops")) {
    log("hop costs (a child process against the fakes)");
    results.hops = await hops();
    const h = results.hops;
    log(
      `sign ${h.sign.opsPerSec}/s (bare HMAC ${h.signBareHmac.opsPerSec}/s), hashes ${h.hashes.opsPerSec}/s, userinfo p50 ${h.userinfo.p50} ms ${h.userinfoConcurrent.opsPerSec}/s@64 (fetch ${h.userinfoFetch.p50} ms ${h.userinfoFetchConcurrent.opsPerSec}/s@64), twirp p50 ${h.twirp.p50} ms ${h.twirpConcurrent.opsPerSec}/s@64`,
    );
  }

  if (phases.has("startup") && !external) {
    const n = smoke ? 1 : 5;
    // One start first, so the module cache is warm as on a deployed machine.
    await (await spawnService({ env: serviceEnv })).stop();
    const runs: number[] = [];
    for (let i = 0; i < n; i++) {
      const service = await spawnService({ env: serviceEnv });
      runs.push(round(service.startupMs!));
      await service.stop();
    }
    const sorted = [...runs].sort((a, b) => a - b);
    results.startup = {
      runs,
      medianMs: sorted[Math.floor(n / 2)]!,
      maxMs: sorted[n - 1]!,
    };
    log(`start-up to first /healthz 200: ${runs.join(", ")} ms`);
  }

  if (phases.has("tokens")) {
    const port = args.profile === undefined || external
      ? undefined
      : inspectorPort();
    const target = await startTarget(
      port === undefined ? [] : [`--inspect=127.0.0.1:${port}`],
    );
    const profiler = port === undefined
      ? undefined
      : await InspectorProfiler.connect(port);
    try {
      let idleRssMiB: number | undefined;
      if (target.pid !== undefined) {
        await sleep(smoke ? 200 : 1000);
        idleRssMiB = round(memoryOf(target.pid).rss);
        log(`idle RSS after start-up: ${idleRssMiB} MiB`);
      }
      const connections = args.conns?.split(",").map(Number) ??
        (smoke ? [16] : [1, 16, 64]);
      const paths = (args.paths?.split(",") ?? ["restricted", "full"]) as (
        "restricted" | "full"
      )[];
      await profiler?.start();
      const perf = args.perf === undefined || target.pid === undefined
        ? undefined
        : new Deno.Command("perf", {
          args: [
            "record",
            "-F",
            "999",
            "-g",
            "-o",
            args.perf,
            "-p",
            String(target.pid),
          ],
          stdout: "null",
          stderr: "null",
        }).spawn();
      for (const path of paths) {
        for (const c of connections) {
          results.getToken.push(
            await watching(target, () => tokenRun(target, path, c)),
          );
        }
      }
      if (perf !== undefined) {
        perf.kill("SIGINT");
        await perf.status;
        for (const sort of ["dso", "symbol"]) {
          const report = await new Deno.Command("perf", {
            args: [
              "report",
              "-i",
              args.perf!,
              "--stdio",
              "--no-children",
              "--sort",
              sort,
              "--percent-limit",
              "0.5",
              "-g",
              "none",
            ],
            stdout: "piped",
            stderr: "null",
          }).output();
          console.error(
            new TextDecoder().decode(report.stdout).split("\n")
              .filter((l) => l.trim() !== "" && !l.startsWith("#")).slice(0, 45)
              .join("\n"),
          );
        }
        log(`wrote ${args.perf} (perf report -i ${args.perf})`);
      }
      if (profiler !== undefined) {
        const profile = await profiler.stop();
        profiler.close();
        await Deno.writeTextFile(args.profile!, JSON.stringify(profile));
        console.error(summarize(profile));
        log(`wrote ${args.profile} (open it in Chrome DevTools)`);
      }
      if (target.pid !== undefined && idleRssMiB !== undefined) {
        const peakRssMiB = round(memoryOf(target.pid).hwm);
        await sleep(smoke ? 200 : 2000);
        const after = memoryOf(target.pid);
        const heap = await heapMiB(target.url);
        results.memory = {
          idleRssMiB,
          peakRssMiB,
          idleRssAfterLoadMiB: round(after.rss),
          afterLoad: {
            anonMiB: round(after.anon),
            fileMiB: round(after.file),
            ...heap,
          },
        };
        log(
          `peak RSS ${peakRssMiB} MiB; idle after load ${results.memory.idleRssAfterLoadMiB} MiB (anonymous ${
            round(after.anon)
          }, file pages ${
            round(after.file)
          }; V8 heap committed ${heap.heapTotalMiB}, used ${heap.heapUsedMiB})`,
        );
      }
    } finally {
      await target.stop();
    }
  }

  if (phases.has("v8") && !external && !smoke && results.memory) {
    const argv = startTaskArgs().filter((a) => !a.startsWith("--v8-flags="));
    const target = await spawnService({ env: serviceEnv, args: argv });
    try {
      const run = await tokenRun(target, "full", 64, " (without V8 flags)");
      results.memory.peakRssWithoutV8FlagsMiB = round(
        memoryOf(target.pid!).hwm,
      );
      log(
        `without the V8 flags: ${run.rps} req/s, peak RSS ${results.memory.peakRssWithoutV8FlagsMiB} MiB`,
      );
    } finally {
      await target.stop();
    }
  }

  if (phases.has("jobs")) {
    results.jobHeap = await jobHeap();
    log(
      `delayed leave: heap per job in-process after a full GC, ${jobs} jobs: ${results.jobHeap.waitingBytes} B waiting, ${results.jobHeap.connectedBytes} B connected`,
    );
    const target = await startTarget();
    try {
      if (target.pid !== undefined) await sleep(smoke ? 200 : 1000);
      log(`delayed leave: ${jobs} jobs, delay_timeout ${delayTimeoutMs} ms`);
      results.delayedLeave = await watching(
        target,
        () =>
          runDelayedLeave(target, hs, sfu, {
            jobs,
            delayTimeoutMs,
            // At least two restart periods (80 % of the timeout each), so
            // the window cannot fall between two bursts of restarts.
            windowSeconds: Math.max(
              smoke ? 1 : 10,
              (delayTimeoutMs * 1.6) / 1000,
            ),
            webhookSeconds: smoke ? 1 : 5,
            webhookConnections: 16,
            createConcurrency: 32,
            apiKey,
            apiSecret,
            serverName: fullName,
            fresh: !external,
          }),
      );
      const dl = results.delayedLeave;
      log(
        `delayed leave: set-up ${dl.setupSeconds} s, ${dl.connected} connected, ${dl.sent} sent; RSS ${dl.rssBeforeMiB} -> ${dl.rssWithJobsMiB} MiB (peak ${dl.peakRssMiB}), heap used ${dl.heapUsedBeforeMiB} -> ${dl.heapUsedWithJobsMiB} MiB (committed ${dl.heapTotalWithJobsMiB}); ${dl.hsConnectionsWhileRestarting} new hs connections while restarting; idle CPU ${dl.idleCpuPercent} % at ${dl.restartsPerSec} restarts/s; webhooks ${dl.webhooks.rps}/s p99 ${dl.webhooks.p99} ms`,
      );
    } finally {
      await target.stop();
    }
  }
} finally {
  await Promise.all([hs.close(), sfu.close()]);
  await cleanupCa();
}

const final: Results = {
  ...results,
  targets: checkTargets(results),
  seconds: round((performance.now() - began) / 1000),
};
const table = markdown(final);
console.log(table);

// Only a whole run of this checkout goes to bench/results/.
const partial = smoke || args.phases !== undefined ||
  args["service-root"] !== undefined || args["v8-flags"] !== undefined;
const out = args.out ??
  (partial
    ? await Deno.makeTempFile({
      prefix: `lk-jwt-bench-${smoke ? "smoke" : "partial"}-`,
      suffix: ".json",
    })
    : new URL(
      `./results/${
        final.date.replaceAll(":", "-").replace(/\.\d+Z$/, "Z")
      }.json`,
      import.meta.url,
    ).pathname);
await Deno.mkdir(out.replace(/\/[^/]*$/, ""), { recursive: true });
await Deno.writeTextFile(
  out,
  JSON.stringify({ ...final, table }, null, 2) + "\n",
);
log(`wrote ${out} (${final.seconds} s)`);

// The smoke run only asserts that every figure it asked for was produced.
const missing: string[] = [];
const positive = (name: string, x: number | undefined) => {
  if (x === undefined || !Number.isFinite(x) || x <= 0) missing.push(name);
};
if (phases.has("tokens")) {
  if (final.getToken.length === 0) missing.push("/get_token runs");
  for (const t of final.getToken) {
    positive(`/get_token ${t.path} c=${t.connections} req/s`, t.rps);
    positive(`/get_token ${t.path} c=${t.connections} p99`, t.p99);
    if (t.errors > 0) {
      missing.push(
        `/get_token ${t.path} c=${t.connections}: ${t.errors} errors`,
      );
    }
  }
  if (!external) {
    positive("idle RSS", final.memory?.idleRssMiB);
    positive("peak RSS", final.memory?.peakRssMiB);
  }
}
if (phases.has("startup") && !external) {
  positive("start-up time", final.startup?.medianMs);
}
if (phases.has("hops")) {
  positive("JWT signing ops/s", final.hops?.sign.opsPerSec);
  positive("userinfo round trip", final.hops?.userinfo.p50);
  positive("Twirp round trip", final.hops?.twirp.p50);
}
if (phases.has("jobs")) {
  const dl = final.delayedLeave;
  if (dl?.connected !== jobs) {
    missing.push(`delayed-leave jobs connected: ${dl?.connected} of ${jobs}`);
  }
  positive("restarts/s", dl?.restartsPerSec);
  positive("heap per waiting job", final.jobHeap?.waitingBytes);
  positive("heap per connected job", final.jobHeap?.connectedBytes);
  positive("webhooks/s", dl?.webhooks.rps);
  if ((dl?.webhooks.errors ?? 1) > 0) {
    missing.push(`webhook errors: ${dl?.webhooks.errors}`);
  }
  if (!external) positive("RSS with jobs", dl?.rssWithJobsMiB);
}
if (missing.length > 0) {
  log(`FAILED: missing or bad figures: ${missing.join("; ")}`);
  Deno.exit(1);
}
log("ok: every figure produced");
