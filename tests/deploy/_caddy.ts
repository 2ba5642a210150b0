/**
 * Runs Caddy with a given Caddyfile on a free local port, for tests that put
 * it in front of the service (or a fake). The Caddyfile is used unchanged:
 * its `{$ENV}` placeholders get the values passed in `env`, and a wrapper
 * adds the global options a test needs (no admin endpoint, no certificates,
 * state in a temporary directory).
 *
 * ```ts
 * await using caddy = await startCaddy({
 *   caddy: findCaddy().path!,
 *   caddyfile: "deploy/Caddyfile",
 *   env: { LK_JWT_UPSTREAM: "127.0.0.1:8080" },
 * });
 * await fetch(`${caddy.url}/livekit/jwt/healthz`);
 * ```
 * @module
 */
import { join, resolve } from "node:path";
import { findTool, freePort, ROOT, type Tool } from "./_tools.ts";

/** Caddy on PATH (scripts/install/caddy.sh installs Debian's package). */
export function findCaddy(): Tool {
  return findTool("caddy", {
    candidates: ["/usr/bin/caddy"],
    install: "scripts/install/caddy.sh",
  });
}

/** Options of {@linkcode startCaddy}. */
export interface StartCaddyOptions {
  /** Path of the caddy executable. */
  caddy: string;
  /** Caddyfile to serve, absolute or relative to the work tree. */
  caddyfile: string;
  /**
   * Values of the Caddyfile's `{$ENV}` placeholders. `siteAddressVar`
   * (default CADDY_SITE_ADDRESS) is set to http://127.0.0.1:<port>.
   */
  env?: Record<string, string>;
  /** Placeholder that holds the site address. */
  siteAddressVar?: string;
  /** How long to wait for the port to accept connections (ms). */
  startTimeoutMs?: number;
}

/** A running Caddy. */
export interface CaddyHandle extends AsyncDisposable {
  /** Base URL of the site, e.g. http://127.0.0.1:41234 (no trailing slash). */
  url: string;
  port: number;
  /** What Caddy printed so far (its logs go to stderr). */
  logs(): string;
  /** Stops Caddy and removes its temporary files. */
  close(): Promise<void>;
}

/** Starts Caddy and resolves once its port accepts connections. */
export async function startCaddy(
  options: StartCaddyOptions,
): Promise<CaddyHandle> {
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "lk-caddy-" });
  const wrapper = join(dir, "Caddyfile");
  await Deno.writeTextFile(
    wrapper,
    [
      "{",
      "\tadmin off",
      "\tauto_https off",
      `\tstorage file_system ${join(dir, "data")}`,
      "}",
      `import ${resolve(ROOT, options.caddyfile)}`,
      "",
    ].join("\n"),
  );
  const child = new Deno.Command(options.caddy, {
    args: ["run", "--config", wrapper, "--adapter", "caddyfile"],
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: dir,
      XDG_CONFIG_HOME: join(dir, "config"),
      XDG_DATA_HOME: join(dir, "data"),
      ...options.env,
      [options.siteAddressVar ?? "CADDY_SITE_ADDRESS"]:
        `http://127.0.0.1:${port}`,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();

  let output = "";
  const decoder = new TextDecoder();
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      output += decoder.decode(chunk, { stream: true });
    }
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });

  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
    }
    await status;
    await drained;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 10_000);
  while (true) {
    if (exited) {
      await close();
      throw new Error(`caddy exited before listening:\n${output}`);
    }
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      break;
    } catch {
      if (Date.now() > deadline) {
        await close();
        throw new Error(`caddy did not listen on ${port} in time:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    logs: () => output,
    close,
    [Symbol.asyncDispose]: close,
  };
}
