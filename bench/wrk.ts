/** @module Runs Debian's `wrk` as the load generator (a process of its own) and reads its figures. */

import { MachineSampler, ProcessSampler } from "./proc.ts";

const LUA = new URL("./lua/", import.meta.url).pathname;

/** What one wrk run measured. */
export interface WrkResult {
  connections: number;
  /** CPU of wrk itself, % of one core (sampled every 100 ms, so a little low). */
  wrkCpuPercent: number;
  /** CPU of the whole machine meanwhile, % of one core (200 % = both busy). */
  machineCpuPercent: number;
  requests: number;
  seconds: number;
  /** Requests per second. */
  rps: number;
  /** Latencies in milliseconds. */
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  max: number;
  /** Non-2xx answers plus socket errors and timeouts. */
  errors: number;
}

export interface WrkOptions {
  url: string;
  /** A script in bench/lua/. */
  script: "get_token.lua" | "webhook.lua";
  scriptArgs: string[];
  connections: number;
  seconds: number;
  threads?: number;
}

/** Throws with a hint when wrk is not installed. */
export async function checkWrk(): Promise<void> {
  try {
    await new Deno.Command("wrk", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .output();
  } catch {
    throw new Error(
      "wrk is not installed: run scripts/install/bench-wrk.sh (Debian's wrk)",
    );
  }
}

/** Runs wrk once and returns its figures; throws when it printed none. */
export async function runWrk(options: WrkOptions): Promise<WrkResult> {
  const threads = Math.min(options.threads ?? 1, options.connections);
  const args = [
    `-t${threads}`,
    `-c${options.connections}`,
    `-d${options.seconds}s`,
    "--timeout",
    "10s",
    "-s",
    `${LUA}${options.script}`,
    options.url,
    "--",
    ...options.scriptArgs,
  ];
  const child = new Deno.Command("wrk", {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const sampler = new ProcessSampler(child.pid, 100);
  const machine = new MachineSampler();
  const out = await child.output();
  const wrkCpu = sampler.stop();
  const machineCpu = machine.stop();
  const text = new TextDecoder().decode(out.stdout);
  const line = text.split("\n").find((l) => l.startsWith("BENCH_JSON "));
  if (!out.success || line === undefined) {
    throw new Error(
      `wrk ${args.join(" ")} failed (code ${out.code}):\n${text}${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  const r = JSON.parse(line.slice("BENCH_JSON ".length));
  const seconds = r.duration_us / 1e6;
  const ms = (us: number) => Math.round(us / 10) / 100;
  return {
    connections: options.connections,
    wrkCpuPercent: Math.round(wrkCpu.cpuPercent),
    machineCpuPercent: Math.round(machineCpu),
    requests: r.requests,
    seconds,
    rps: Math.round(r.requests / seconds),
    p50: ms(r.latency_us.p50),
    p90: ms(r.latency_us.p90),
    p99: ms(r.latency_us.p99),
    mean: ms(r.latency_us.mean),
    max: ms(r.latency_us.max),
    errors: r.errors.connect + r.errors.read + r.errors.write +
      r.errors.status + r.errors.timeout,
  };
}
