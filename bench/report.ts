/** @module The bench's results: their shape, the targets of the issue, and the Markdown table. */

import type { DelayedLeaveResult } from "./delayed_leave.ts";
import type { HopsResult } from "./hops.ts";
import type { JobHeapResult } from "./job_heap.ts";
import type { WrkResult } from "./wrk.ts";

export interface TokenRun extends WrkResult {
  path: "restricted" | "full";
  /** CPU of the service, % of one core (200 % is both cores). */
  serviceCpuPercent?: number;
  /** Service CPU time per request, µs (all its threads). */
  serviceCpuUsPerRequest?: number;
  /** CPU of the bench process, which hosts the fake homeserver and SFU. */
  fakesCpuPercent: number;
  /** CPU of every other process on the machine (not service, fakes or wrk). */
  otherCpuPercent: number;
  serviceMaxRssMiB?: number;
  /** New TCP connections the service opened to the homeserver / SFU. */
  hsConnections: number;
  sfuConnections: number;
}

export interface Results {
  date: string;
  mode: "full" | "smoke";
  target: string;
  machine: { cores: number; deno: string; v8: string };
  v8Flags: string;
  startup?: { runs: number[]; medianMs: number; maxMs: number };
  memory?: {
    idleRssMiB: number;
    idleRssAfterLoadMiB?: number;
    peakRssMiB: number;
    /** After the load: RSS split and the V8 heap, to tell where the memory is. */
    afterLoad?: {
      anonMiB: number;
      fileMiB: number;
      heapTotalMiB?: number;
      heapUsedMiB?: number;
    };
    /** The same heaviest run without the start task's V8 flags, for comparison. */
    peakRssWithoutV8FlagsMiB?: number;
  };
  getToken: TokenRun[];
  delayedLeave?: DelayedLeaveResult;
  /** In-process heap of one job after a full GC (bench/job_heap.ts). */
  jobHeap?: JobHeapResult;
  hops?: HopsResult;
  targets: TargetCheck[];
  /** Whatever makes figures doubtful (other load on the machine). */
  warnings: string[];
  seconds: number;
}

export interface TargetCheck {
  name: string;
  target: string;
  measured: string;
  met: boolean | undefined;
}

const fmt = (x: number | undefined, unit = "", digits = 1) =>
  x === undefined || Number.isNaN(x)
    ? "n/a"
    : `${x.toLocaleString("en-US", { maximumFractionDigits: digits })}${unit}`;

/** The issue's targets, checked against the figures (undefined: not measured). */
export function checkTargets(r: Omit<Results, "targets">): TargetCheck[] {
  const full64 = r.getToken.find((t) =>
    t.path === "full" && t.connections === 64
  );
  const checks: TargetCheck[] = [];
  if (full64) {
    checks.push({
      name: "Full-access /get_token at 64 connections",
      target: "≥ 5,000 req/s, p99 < 25 ms",
      measured: `${fmt(full64.rps, " req/s", 0)}, p99 ${
        fmt(full64.p99, " ms", 2)
      }`,
      met: full64.rps >= 5000 && full64.p99 < 25,
    });
  }
  for (const c of [1, 16, 64]) {
    const full = r.getToken.find((t) =>
      t.path === "full" && t.connections === c
    );
    const restricted = r.getToken.find((t) =>
      t.path === "restricted" && t.connections === c
    );
    if (full && restricted) {
      checks.push({
        name: `Restricted path faster than full access (${c} conn.)`,
        target: "more req/s",
        measured: `${fmt(restricted.rps, "", 0)} vs ${
          fmt(full.rps, "", 0)
        } req/s`,
        met: restricted.rps > full.rps,
      });
    }
  }
  if (r.memory) {
    checks.push({
      name: "Idle RSS after start-up",
      target: "< 64 MiB",
      measured: fmt(r.memory.idleRssMiB, " MiB"),
      met: r.memory.idleRssMiB < 64,
    });
    checks.push({
      name: "Peak RSS under the heaviest load (shipped V8 flags)",
      target: "< 128 MiB",
      measured: fmt(r.memory.peakRssMiB, " MiB"),
      met: r.memory.peakRssMiB < 128,
    });
  }
  const dl = r.delayedLeave;
  // A --target ran other load before the jobs: its RSS says nothing of them.
  if (dl?.peakRssMiB !== undefined && r.target === "started by the bench") {
    checks.push({
      name: `${dl.jobs.toLocaleString("en-US")} delayed-leave jobs, total RSS`,
      target: "< 100 MiB",
      measured: `${fmt(dl.rssWithJobsMiB, " MiB")} (peak ${
        fmt(dl.peakRssMiB, " MiB")
      })`,
      met: dl.peakRssMiB < 100,
    });
  }
  if (r.startup) {
    checks.push({
      name: "Start-up to first /healthz 200",
      target: "< 300 ms",
      measured: `${fmt(r.startup.medianMs, " ms", 0)} median, ${
        fmt(r.startup.maxMs, " ms", 0)
      } max`,
      met: r.startup.maxMs < 300,
    });
  }
  return checks;
}

/** The Markdown tables printed at the end and kept for the README. */
export function markdown(r: Results): string {
  const lines: string[] = [];
  lines.push(
    `Measured ${r.date} (${r.mode}) on ${r.machine.cores} cores, Deno ${r.machine.deno}, ` +
      `service flags \`--v8-flags=${r.v8Flags}\`; load generator, fakes and service on the same machine.`,
    "",
    "| /get_token | conns | req/s | p50 ms | p90 ms | p99 ms | errors | service CPU µs/req | CPU % service / fakes / wrk / other | new conns to hs / sfu |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  );
  for (const t of r.getToken) {
    lines.push(
      `| ${
        t.path === "full" ? "full access (CreateRoom)" : "restricted"
      } | ${t.connections} | ${fmt(t.rps, "", 0)} | ${fmt(t.p50, "", 2)} | ${
        fmt(t.p90, "", 2)
      } | ${fmt(t.p99, "", 2)} | ${t.errors} | ${
        fmt(t.serviceCpuUsPerRequest, "", 0)
      } | ${fmt(t.serviceCpuPercent, "", 0)} / ${
        fmt(t.fakesCpuPercent, "", 0)
      } / ${t.wrkCpuPercent} / ${t.otherCpuPercent} | ${t.hsConnections} / ${t.sfuConnections} |`,
    );
  }
  lines.push("", "| figure | value |", "| --- | --- |");
  const row = (name: string, value: string) =>
    lines.push(`| ${name} | ${value} |`);
  if (r.startup) {
    row(
      "start-up to first /healthz 200",
      `${fmt(r.startup.medianMs, " ms", 0)} median, ${
        fmt(r.startup.maxMs, " ms", 0)
      } max of ${r.startup.runs.length}`,
    );
  }
  if (r.memory) {
    row("idle RSS after start-up", fmt(r.memory.idleRssMiB, " MiB"));
    row(
      "peak RSS (VmHWM) after every /get_token run",
      fmt(r.memory.peakRssMiB, " MiB"),
    );
    if (r.memory.idleRssAfterLoadMiB !== undefined) {
      const a = r.memory.afterLoad;
      row(
        "idle RSS after the load",
        `${fmt(r.memory.idleRssAfterLoadMiB, " MiB")}${
          a
            ? ` (anonymous ${
              fmt(a.anonMiB, " MiB")
            }, deno binary and other file pages ${
              fmt(a.fileMiB, " MiB")
            }; V8 heap ${fmt(a.heapUsedMiB, " MiB")} used of ${
              fmt(a.heapTotalMiB, " MiB")
            })`
            : ""
        }`,
      );
    }
    if (r.memory.peakRssWithoutV8FlagsMiB !== undefined) {
      row(
        "peak RSS, full access at 64 conns, without the V8 flags",
        fmt(r.memory.peakRssWithoutV8FlagsMiB, " MiB"),
      );
    }
  }
  const dl = r.delayedLeave;
  if (dl) {
    const n = dl.jobs.toLocaleString("en-US");
    row(
      `${n} delayed-leave jobs (timeout ${dl.delayTimeoutMs} ms): set-up`,
      `${fmt(dl.setupSeconds, " s", 2)} (${
        fmt(dl.setupJobsPerSec, " jobs/s", 0)
      }, delegate + webhook each); ${dl.connected} connected, ${dl.sent} leaves sent`,
    );
    row(
      `${n} jobs: RSS before / with jobs / peak`,
      `${fmt(dl.rssBeforeMiB, " MiB")} / ${fmt(dl.rssWithJobsMiB, " MiB")} / ${
        fmt(dl.peakRssMiB, " MiB")
      }`,
    );
    row(
      "memory per job (RSS, V8 heap used)",
      `${fmt(dl.rssPerJobKiB, " KiB", 2)}, ${fmt(dl.heapPerJobKiB, " KiB", 2)}`,
    );
    if (r.jobHeap) {
      row(
        `heap per job in-process after a full GC (${
          r.jobHeap.jobs.toLocaleString("en-US")
        } jobs): waiting / connected`,
        `${fmt(r.jobHeap.waitingBytes / 1024, " KiB", 2)} / ${
          fmt(r.jobHeap.connectedBytes / 1024, " KiB", 2)
        }`,
      );
    }
    row(
      "CPU while idle-restarting",
      `${fmt(dl.idleCpuPercent, " %")} of one core at ${
        fmt(dl.restartsPerSec, " restarts/s", 0)
      }`,
    );
    row(
      `signed webhooks (${dl.webhooks.connections} conns)`,
      `${fmt(dl.webhooks.rps, " /s", 0)}, p99 ${
        fmt(dl.webhooks.p99, " ms", 2)
      }, ${dl.webhooks.errors} errors`,
    );
  }
  const h = r.hops;
  if (h) {
    row(
      "JWT signing in-process (TokenSigner)",
      fmt(h.sign.opsPerSec, " ops/s", 0),
    );
    row(
      "  same claims, one WebCrypto HMAC / one node:crypto HMAC",
      `${fmt(h.signBareHmac.opsPerSec, " ops/s", 0)} / ${
        fmt(h.signNodeHmac.opsPerSec, " ops/s", 0)
      }`,
    );
    row(
      "room + identity hashes (as the service / bare node:crypto)",
      `${fmt(h.hashes.opsPerSec, " ops/s", 0)} / ${
        fmt(h.hashesNode.opsPerSec, " ops/s", 0)
      }`,
    );
    row(
      "userinfo round trip (node:https, keep-alive)",
      `p50 ${fmt(h.userinfo.p50, " ms", 3)}, p99 ${
        fmt(h.userinfo.p99, " ms", 3)
      }; ${fmt(h.userinfoConcurrent.opsPerSec, " /s", 0)} at 64 in flight`,
    );
    row(
      "  same with fetch (comparison)",
      `p50 ${fmt(h.userinfoFetch.p50, " ms", 3)}, p99 ${
        fmt(h.userinfoFetch.p99, " ms", 3)
      }; ${fmt(h.userinfoFetchConcurrent.opsPerSec, " /s", 0)} at 64 in flight`,
    );
    row(
      "Twirp CreateRoom round trip (fetch)",
      `p50 ${fmt(h.twirp.p50, " ms", 3)}, p99 ${fmt(h.twirp.p99, " ms", 3)}; ${
        fmt(h.twirpConcurrent.opsPerSec, " /s", 0)
      } at 64 in flight`,
    );
  }
  if (r.targets.length > 0) {
    lines.push(
      "",
      "| target | wanted | measured | met |",
      "| --- | --- | --- | --- |",
    );
    for (const t of r.targets) {
      lines.push(
        `| ${t.name} | ${t.target} | ${t.measured} | ${
          t.met === undefined ? "n/a" : t.met ? "yes" : "**no**"
        } |`,
      );
    }
  }
  for (const w of r.warnings) lines.push("", `Warning: ${w}.`);
  return lines.join("\n");
}
