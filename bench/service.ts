/**
 * @module Starts the service as the release binary runs it: the `start`
 * task's exact flags from deno.json (permission set and V8 heap limit).
 */

let root = new URL("../", import.meta.url);
let v8FlagsOverride: string | undefined;

/**
 * Runs the service from another checkout (a prototype of a change, say)
 * and/or with other V8 flags than the start task's.
 */
export function configureService(
  options: { root?: string; v8Flags?: string },
): void {
  if (options.root !== undefined) {
    root = new URL(`file://${Deno.realPathSync(options.root)}/`);
  }
  v8FlagsOverride = options.v8Flags;
}

/** The checkout the service runs from, as a file URL ending in `/`. */
export function serviceRoot(): string {
  return root.href;
}

/** The argv after `deno` of `deno task start` (with the V8 flags override, if any). */
export function startTaskArgs(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(new URL("deno.json", root)));
  const [deno, ...args] = String(config.tasks.start).split(/\s+/);
  if (deno !== "deno") {
    throw new Error(`unexpected start task: ${config.tasks.start}`);
  }
  if (v8FlagsOverride === undefined) return args;
  const rest = args.filter((a) => !a.startsWith("--v8-flags="));
  if (v8FlagsOverride !== "") {
    rest.splice(rest.length - 1, 0, `--v8-flags=${v8FlagsOverride}`);
  }
  return rest;
}

/** The start task's `--v8-flags=...` value, or "" when it has none. */
export function shippedV8Flags(): string {
  return startTaskArgs().find((a) => a.startsWith("--v8-flags="))?.slice(11) ??
    "";
}

/** A service the bench talks to: one it started (with a pid) or one given by URL. */
export interface Target {
  url: string;
  /** Known when the bench started it, or `--target-pid` named it. */
  pid: number | undefined;
  /** Milliseconds from spawn to the first `/healthz` 200, when the bench started it. */
  startupMs: number | undefined;
  /** When the bench started it and it has ended: how, and the end of its log. */
  died(): string | undefined;
  stop(): Promise<void>;
}

export interface SpawnOptions {
  env: Record<string, string>;
  /** Replaces the start task's argv (e.g. without the V8 flags). */
  args?: string[];
  /** Deno flags added before the script (e.g. `--inspect=...`). */
  extraFlags?: string[];
  timeoutMs?: number;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Starts the service on a free loopback port and waits for `/healthz` to answer 200. */
export async function spawnService(options: SpawnOptions): Promise<Target> {
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const name of ["PATH", "HOME", "DENO_DIR", "TMPDIR"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  const started = performance.now();
  const argv = [...(options.args ?? startTaskArgs())];
  argv.splice(argv.length - 1, 0, ...(options.extraFlags ?? []));
  const child = new Deno.Command(Deno.execPath(), {
    args: argv,
    cwd: root,
    env: { ...env, ...options.env, LIVEKIT_JWT_BIND: `127.0.0.1:${port}` },
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  // Keep the last bit of the log for error messages.
  let log = "";
  const reading = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({
      write(chunk) {
        log = (log + chunk).slice(-8192);
      },
    }),
  ).catch(() => {});
  let exited = false;
  let exitStatus: Deno.CommandStatus | undefined;
  let stopping = false;
  const status = child.status.then((s) => {
    exited = true;
    exitStatus = s;
    return s;
  });
  const deadline = started + (options.timeoutMs ?? 20_000);
  let startupMs: number | undefined;
  while (startupMs === undefined) {
    if (exited || performance.now() > deadline) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await status;
      await reading;
      throw new Error(
        `the service did not start (${JSON.stringify(await status)}, deno ${
          argv.join(" ")
        }):\n${log}`,
      );
    }
    try {
      const response = await fetch(`${url}/healthz`);
      await response.body?.cancel();
      if (response.status === 200) startupMs = performance.now() - started;
    } catch {
      await new Promise((r) => setTimeout(r, 2));
    }
  }
  return {
    url,
    pid: child.pid,
    startupMs,
    died: () =>
      exitStatus === undefined || stopping
        ? undefined
        : `exit code ${exitStatus.code}${
          exitStatus.signal ? `, signal ${exitStatus.signal}` : ""
        }; last log lines:\n${log.trimEnd().split("\n").slice(-15).join("\n")}`,
    async stop() {
      stopping = true;
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 15_000);
      await status;
      clearTimeout(timer);
      await reading;
    },
  };
}

/** A service started elsewhere, reached by URL; waits for its `/healthz`. */
export async function externalTarget(
  url: string,
  pid: number | undefined,
  waitMs: number,
): Promise<Target> {
  const base = url.replace(/\/+$/, "");
  const deadline = Date.now() + waitMs;
  while (true) {
    try {
      const response = await fetch(`${base}/healthz`);
      await response.body?.cancel();
      if (response.ok) break;
    } catch {
      // Not up yet.
    }
    if (Date.now() > deadline) {
      throw new Error(`${base}/healthz did not answer 200 within ${waitMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return {
    url: base,
    pid,
    startupMs: undefined,
    died: () => undefined,
    stop: () => Promise.resolve(),
  };
}
