/**
 * @module Starting the real service as a subprocess, with exactly the flags of
 * the `start` task (the ones the compiled binary gets), and talking to it.
 */

import { createHash } from "node:crypto";
import { waitFor } from "./_fakes/wait.ts";

const ROOT = new URL("../", import.meta.url);

/** The API key and secret every test world uses. */
export const API_KEY = "test-key";
export const API_SECRET = "test-secret-that-is-long-enough-0123456789";

/**
 * The argv of `deno task start`, read from deno.json, so tests run the
 * service with the same permission set and V8 flags as the release binary.
 */
export function serviceArgs(): string[] {
  const config = JSON.parse(
    Deno.readTextFileSync(new URL("deno.json", ROOT)),
  );
  const start: string = config.tasks.start;
  const [deno, ...args] = start.split(/\s+/);
  if (deno !== "deno") throw new Error(`unexpected start task: ${start}`);
  return args;
}

/** The variables a child keeps from the test's environment: nothing LIVEKIT_*. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ["PATH", "HOME", "DENO_DIR", "TMPDIR"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  env.NO_COLOR = "1";
  return env;
}

/** A running service process. */
export class ServiceProcess {
  readonly url: string;
  readonly port: number;
  readonly #child: Deno.ChildProcess;
  readonly #log: string[];
  readonly #done: Promise<Deno.CommandStatus>;

  constructor(
    child: Deno.ChildProcess,
    url: string,
    port: number,
    log: string[],
    done: Promise<Deno.CommandStatus>,
  ) {
    this.#child = child;
    this.port = port;
    this.url = url;
    this.#log = log;
    this.#done = done;
  }

  /** Everything the process wrote to stderr so far. */
  get logs(): string {
    return this.#log.join("");
  }

  /** The process's log lines so far. */
  get logLines(): string[] {
    return this.logs.split("\n").filter((l) => l !== "");
  }

  get pid(): number {
    return this.#child.pid;
  }

  fetch(path: string, init?: RequestInit): Promise<Response> {
    return fetch(`${this.url}${path}`, init);
  }

  /** POSTs JSON and returns the status and the parsed body. */
  async post(
    path: string,
    body: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await this.fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await response.text();
    return {
      status: response.status,
      body: text === "" ? {} : JSON.parse(text),
    };
  }

  /** Waits until a log line matches. */
  async waitForLog(pattern: RegExp, timeoutMs = 10_000): Promise<void> {
    await waitFor(() => pattern.test(this.logs), timeoutMs).catch(() => {
      throw new Error(`no log line matched ${pattern}; logs:\n${this.logs}`);
    });
  }

  /** Sends a signal and waits for the exit. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    try {
      this.#child.kill(signal);
    } catch {
      // Already gone.
    }
    return await this.#done;
  }

  /** The exit status, once the process ends. */
  get exited(): Promise<Deno.CommandStatus> {
    return this.#done;
  }
}

/** Collects a child's stderr into `log` (and stdout, which the service does not use). */
function collect(
  stream: ReadableStream<Uint8Array>,
  log: string[],
): Promise<void> {
  return stream.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (chunk) => void log.push(chunk) }),
  );
}

/**
 * Starts the service with `env` on a free loopback port and waits until it
 * listens. Throws with its output when it exits instead.
 */
export async function startService(
  env: Record<string, string>,
): Promise<ServiceProcess> {
  const log: string[] = [];
  const child = new Deno.Command(Deno.execPath(), {
    args: serviceArgs(),
    cwd: ROOT,
    env: { ...baseEnv(), LIVEKIT_JWT_BIND: "127.0.0.1:0", ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const streams = Promise.all([
    collect(child.stderr, log),
    collect(child.stdout, log),
  ]);
  const done = child.status.then(async (status) => {
    await streams;
    return status;
  });
  let exited = false;
  done.then(() => exited = true);
  // A fixed port is known; port 0 is read from the "Listening on" line.
  const bind = /^\[?([^\]]*?)\]?:(\d+)$/.exec(env.LIVEKIT_JWT_BIND ?? "");
  const fixed = Number(bind?.[2] ?? 0);
  const host = bind?.[1] === "::1" ? "[::1]" : "127.0.0.1";
  let port = 0;
  const started = Date.now();
  while (port === 0 && !exited && Date.now() - started < 20_000) {
    if (fixed !== 0) {
      if (await answers(host, fixed)) port = fixed;
    } else {
      port = Number(/Listening on [^ "]+:(\d+)/.exec(log.join(""))?.[1] ?? 0);
    }
    if (port === 0) await new Promise((r) => setTimeout(r, 20));
  }
  if (port === 0) {
    child.kill("SIGKILL");
    await done;
    throw new Error(`service did not start:\n${log.join("")}`);
  }
  return new ServiceProcess(child, `http://${host}:${port}`, port, log, done);
}

async function answers(host: string, port: number): Promise<boolean> {
  try {
    const response = await fetch(`http://${host}:${port}/healthz`);
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}

/** Runs the service until it exits on its own (a refused configuration). */
export async function runServiceToExit(
  env: Record<string, string>,
  args: string[] = [],
  timeoutMs = 20_000,
): Promise<{ code: number; stderr: string }> {
  const command = new Deno.Command(Deno.execPath(), {
    args: [...serviceArgs(), ...args],
    cwd: ROOT,
    env: { ...baseEnv(), ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  });
  const output = await command.output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return {
    code: output.code,
    stderr: decode(output.stderr) + decode(output.stdout),
  };
}

/** The lines a process printed, without Deno's own notice about config permissions. */
export function ownLines(text: string): string[] {
  return text.split("\n").filter((l) =>
    l.trim() !== "" && !l.includes("Permissions in the config file")
  );
}

/** True when the CI variable asks for every tool to be present: a test that needs a missing one fails. */
export function inCI(): boolean {
  const ci = Deno.env.get("CI");
  return ci !== undefined && ci !== "" && ci !== "0" && ci !== "false";
}

/** True in CI (see {@link inCI}). */
export const IN_CI = inCI();

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/**
 * SHA-256, unpadded base64, of a compact JSON array: the room and identity
 * hashes of SPEC 7, computed here rather than by the service's code.
 */
export function expectedHash(values: string[]): string {
  return createHash("sha256").update(JSON.stringify(values)).digest("base64")
    .replace(/=+$/, "");
}
