/**
 * @module A real LiveKit client process (tests/e2e/client/join.cjs: libwebrtc
 * through @livekit/rtc-node under Node) joining with a JWT the service issued.
 * Killing it with SIGKILL is a client that vanishes without a goodbye.
 */

import { Child } from "./_process.ts";
import { CLIENT_DIR } from "./_tools.ts";

/** One line the client printed. */
export interface ClientEvent {
  event: "joined" | "published" | "error" | "disconnected" | "left";
  room?: string;
  identity?: string;
  sid?: string;
  track?: string;
  message?: string;
  reason?: string;
}

let clients = 0;

/** A running client that joined its room. */
export class LiveKitClient {
  readonly child: Child;

  constructor(child: Child) {
    this.child = child;
  }

  /** Every JSON line printed on stdout so far. */
  get events(): ClientEvent[] {
    const events: ClientEvent[] = [];
    for (const line of this.child.output.split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        events.push(JSON.parse(line));
      } catch {
        // A log line of the SDK that happens to start with a brace.
      }
    }
    return events;
  }

  event(name: ClientEvent["event"]): ClientEvent | undefined {
    return this.events.find((e) => e.event === name);
  }

  /** SIGKILL: the process dies at once, sockets closed by the kernel, no leave sent. */
  kill(): Promise<Deno.CommandStatus> {
    this.child.killNow();
    return this.child.done;
  }

  /** SIGTERM: the client leaves the room cleanly and exits. */
  leave(): Promise<Deno.CommandStatus> {
    return this.child.stop("SIGTERM", 10_000);
  }
}

/**
 * Starts a client with `url` and `jwt` and waits until it has joined and
 * published its microphone, or failed. Returns the client or the error.
 */
export async function tryJoin(
  options: { node: string; url: string; jwt: string; logDir: string },
): Promise<{ client: LiveKitClient } | { error: string }> {
  const n = ++clients;
  const child = new Child(`client ${n}`, options.node, {
    args: [`${CLIENT_DIR}/join.cjs`],
    cwd: CLIENT_DIR,
    env: { LK_URL: options.url, LK_TOKEN: options.jwt },
    clearEnv: true,
    logFile: `${options.logDir}/client-${n}.log`,
  });
  const client = new LiveKitClient(child);
  await child.waitForOutput(/"event":"(published|error)"/, 30_000).catch(
    () => {},
  );
  const failed = client.event("error");
  if (failed !== undefined || client.event("published") === undefined) {
    await client.kill();
    return {
      error: failed?.message ??
        `client did not join within 30 s:\n${child.tail()}`,
    };
  }
  return { client };
}

/** Like {@link tryJoin}, but a failure to join throws. */
export async function join(
  options: { node: string; url: string; jwt: string; logDir: string },
): Promise<LiveKitClient> {
  const result = await tryJoin(options);
  if ("error" in result) throw new Error(`join failed: ${result.error}`);
  return result.client;
}
