/** @module A real redis-server (Debian's package) on a free loopback port, for tests. */

import { createClient } from "redis";
import { IN_CI } from "./_utils.ts";

/** Where redis-server is, or undefined when it is not installed. */
export function findRedisServer(): string | undefined {
  for (
    const dir of (Deno.env.get("PATH") ?? "").split(":").concat([
      "/usr/bin",
      "/usr/sbin",
    ])
  ) {
    try {
      const path = `${dir}/redis-server`;
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/** Why Redis tests cannot run here; they fail instead in CI. */
export function redisSkipReason(): string | undefined {
  if (findRedisServer() !== undefined) return undefined;
  const reason = "redis-server is not installed (apt-get install redis-server)";
  if (IN_CI) throw new Error(reason);
  return reason;
}

export class RedisServer {
  readonly port: number;
  readonly url: string;
  #child: Deno.ChildProcess | undefined;

  constructor(port: number) {
    this.port = port;
    this.url = `redis://127.0.0.1:${port}`;
  }

  /** Starts (or starts again) the server on the same port, with nothing persisted to disk. */
  async start(): Promise<void> {
    this.#child = new Deno.Command(findRedisServer()!, {
      args: [
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
      ],
      stdout: "null",
      stderr: "null",
      stdin: "null",
    }).spawn();
    const started = Date.now();
    while (Date.now() - started < 5_000) {
      try {
        const conn = await Deno.connect({
          hostname: "127.0.0.1",
          port: this.port,
        });
        conn.close();
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    throw new Error(`redis-server did not start on port ${this.port}`);
  }

  async stop(): Promise<void> {
    if (this.#child === undefined) return;
    this.#child.kill("SIGKILL");
    await this.#child.status;
    this.#child = undefined;
  }

  /** A short-lived client for the test's own reads and writes. */
  async withClient<T>(
    fn: (client: ReturnType<typeof createClient>) => Promise<T>,
  ): Promise<T> {
    const client = createClient({ url: this.url });
    client.on("error", () => {});
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.close();
    }
  }
}

/** Starts redis-server on a free port. */
export async function startRedis(): Promise<RedisServer> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const server = new RedisServer(port);
  await server.start();
  return server;
}

/**
 * A `lk-jwt:jobs` value as the reference writes it (SPEC 12): Go field
 * names, the timeout in nanoseconds, `RestartedAt` as RFC 3339.
 */
export function referenceJobValue(
  m: { delayId: string; room: string; identity: string },
  serverName: string,
  delayTimeoutMs: number,
  restartedAt: string,
): string {
  return JSON.stringify({
    Params: {
      DelayId: m.delayId,
      DelayTimeout: delayTimeoutMs * 1_000_000,
      ServerName: serverName,
      LiveKitRoom: m.room,
      LiveKitIdentity: m.identity,
    },
    RestartedAt: restartedAt,
  });
}
