/**
 * @module Child processes of the end-to-end stack (Synapse, the SFU, clients):
 * output kept in a file for the failure report, a wait for a line, and one
 * registry so that every process started is stopped at the end, even when a
 * test fails or the runner exits early.
 */

import { waitFor } from "../_fakes/wait.ts";

/** Every process started and not yet stopped. */
const running = new Set<Child>();

// A runner that exits without reaching afterAll still kills what it started.
globalThis.addEventListener("unload", () => {
  for (const child of running) child.killNow();
});

export interface ChildOptions {
  args: string[];
  env?: Record<string, string>;
  /** Start from an empty environment plus `env` (PATH and HOME are kept). */
  clearEnv?: boolean;
  cwd?: string;
  /** Where stdout and stderr go, besides memory. */
  logFile: string;
}

/** A running child process whose stdout and stderr are collected. */
export class Child {
  readonly name: string;
  readonly logFile: string;
  readonly #child: Deno.ChildProcess;
  readonly #chunks: string[] = [];
  readonly #file: Deno.FsFile;
  readonly done: Promise<Deno.CommandStatus>;
  #exited = false;

  constructor(name: string, command: string, options: ChildOptions) {
    this.name = name;
    this.logFile = options.logFile;
    const env: Record<string, string> = {};
    if (options.clearEnv) {
      for (const key of ["PATH", "HOME", "TMPDIR", "LANG"]) {
        const value = Deno.env.get(key);
        if (value !== undefined) env[key] = value;
      }
    }
    this.#file = Deno.openSync(options.logFile, {
      create: true,
      append: true,
    });
    this.#child = new Deno.Command(command, {
      args: options.args,
      env: { ...env, ...options.env },
      clearEnv: options.clearEnv ?? false,
      ...(options.cwd ? { cwd: options.cwd } : {}),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    running.add(this);
    const collect = (stream: ReadableStream<Uint8Array>) =>
      stream.pipeThrough(new TextDecoderStream()).pipeTo(
        new WritableStream({
          write: (chunk) => {
            this.#chunks.push(chunk);
            try {
              this.#file.writeSync(new TextEncoder().encode(chunk));
            } catch {
              // The log file is a convenience; memory has the output.
            }
          },
        }),
      ).catch(() => {});
    const streams = Promise.all([
      collect(this.#child.stdout),
      collect(this.#child.stderr),
    ]);
    this.done = this.#child.status.then(async (status) => {
      this.#exited = true;
      running.delete(this);
      await streams;
      try {
        this.#file.close();
      } catch {
        // Already closed.
      }
      return status;
    });
  }

  get pid(): number {
    return this.#child.pid;
  }

  get exited(): boolean {
    return this.#exited;
  }

  /** Everything the process printed so far. */
  get output(): string {
    return this.#chunks.join("");
  }

  /** The last `n` lines of output, for failure messages. */
  tail(n = 40): string {
    return this.output.split("\n").slice(-n).join("\n");
  }

  /** Waits until the output matches, failing early when the process exits. */
  async waitForOutput(pattern: RegExp, timeoutMs: number): Promise<void> {
    await waitFor(
      () => pattern.test(this.output) || this.#exited,
      timeoutMs,
    ).catch(() => {});
    if (!pattern.test(this.output)) {
      throw new Error(
        `${this.name}: no output matched ${pattern} within ${timeoutMs} ms` +
          `${this.#exited ? " (it exited)" : ""}; last lines:\n${this.tail()}`,
      );
    }
  }

  /** SIGKILL, synchronously: no goodbye. */
  killNow(): void {
    if (this.#exited) return;
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }

  /** Sends `signal`, waits up to `graceMs` for the exit, then SIGKILL. */
  async stop(
    signal: Deno.Signal = "SIGTERM",
    graceMs = 10_000,
  ): Promise<Deno.CommandStatus> {
    if (!this.#exited) {
      try {
        this.#child.kill(signal);
      } catch {
        // Already gone.
      }
      const timer = setTimeout(() => this.killNow(), graceMs);
      try {
        return await this.done;
      } finally {
        clearTimeout(timer);
      }
    }
    return await this.done;
  }
}

/** Stops every process still running (SIGTERM, then SIGKILL after a grace period). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((child) => child.stop()));
}
