/**
 * @module Where the end-to-end suite finds its pinned programs (installed by
 * scripts/install/e2e.sh under the cache dir), and what to do when one is
 * missing: SKIPPED locally, a failure when CI is set.
 */

import { IN_CI } from "../_utils.ts";
import { findRedisServer } from "../_redis.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** `${LK_CACHE_DIR:-<work tree>/.cache}`, as the install scripts use it. */
export function cacheDir(): string {
  const configured = Deno.env.get("LK_CACHE_DIR");
  if (configured === undefined || configured === "") return `${ROOT}/.cache`;
  return configured.startsWith("/")
    ? configured
    : `${Deno.cwd()}/${configured}`;
}

/** The Node project holding the LiveKit client. */
export const CLIENT_DIR = `${ROOT}/tests/e2e/client`;

/** The programs the stack runs. */
export interface Tools {
  livekitServer: string;
  synapsePython: string;
  node: string;
  redisServer: string;
  /** Versions actually found, for the report. */
  versions: Record<string, string>;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function which(name: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir !== "" && isFile(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return undefined;
}

function run(command: string, args: string[]): string {
  const out = new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  return text.trim();
}

/** Finds every program, or lists what is missing. */
export function findTools(): { tools?: Tools; missing: string[] } {
  const cache = cacheDir();
  const missing: string[] = [];
  const livekitServer = `${cache}/e2e/bin/livekit-server`;
  if (!isFile(livekitServer)) missing.push(`livekit-server (${livekitServer})`);
  const synapsePython = `${cache}/e2e/synapse/bin/python`;
  if (!isFile(synapsePython)) {
    missing.push(`Synapse (${cache}/e2e/synapse)`);
  }
  const node = which("node");
  if (node === undefined) missing.push("node");
  const rtcNode = `${CLIENT_DIR}/node_modules/@livekit/rtc-node/package.json`;
  if (!isFile(rtcNode)) missing.push(`@livekit/rtc-node (${CLIENT_DIR})`);
  const redisServer = findRedisServer();
  if (redisServer === undefined) missing.push("redis-server");
  if (which("openssl") === undefined) missing.push("openssl");
  if (missing.length > 0) return { missing };
  const versions: Record<string, string> = {
    "livekit-server": run(livekitServer, ["--version"]).replace(
      /^livekit-server version /,
      "",
    ),
    "matrix-synapse": run(synapsePython, [
      "-c",
      "import importlib.metadata as m; print(m.version('matrix-synapse'))",
    ]),
    "@livekit/rtc-node": JSON.parse(Deno.readTextFileSync(rtcNode)).version,
    node: run(node!, ["--version"]),
    "redis-server": /v=(\S+)/.exec(run(redisServer!, ["--version"]))?.[1] ??
      "?",
    deno: Deno.version.deno,
  };
  return {
    tools: {
      livekitServer,
      synapsePython,
      node: node!,
      redisServer: redisServer!,
      versions,
    },
    missing,
  };
}

/**
 * The tools, or undefined after printing a SKIPPED line naming what is
 * missing and the script that installs it. With CI set, throws instead.
 */
export function toolsOrSkip(): Tools | undefined {
  const { tools, missing } = findTools();
  if (tools !== undefined) return tools;
  const reason = `missing ${missing.join(", ")}; run scripts/install/e2e.sh`;
  if (IN_CI) throw new Error(`end-to-end stack incomplete: ${reason}`);
  console.log(`SKIPPED end-to-end suite: ${reason}`);
  return undefined;
}

/** Thrown by a {@link poll} probe to stop polling at once (e.g. the process exited). */
export class PollAbort extends Error {}

/**
 * Polls `probe` until it returns a value other than undefined. Errors count as
 * "not yet" (the last one is reported on timeout), except {@link PollAbort}.
 */
export async function poll<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (true) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      if (err instanceof PollAbort) throw err;
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail = lastError instanceof Error
        ? ` (last error: ${lastError.message})`
        : "";
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${detail}`,
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `count` distinct TCP ports that were free a moment ago on 127.0.0.1. */
export function freePorts(count: number): number[] {
  const listeners = Array.from(
    { length: count },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  for (const l of listeners) l.close();
  return ports;
}
