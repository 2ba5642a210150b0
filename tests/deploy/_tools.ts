/**
 * Finds the external tools the deployment tests drive (helm, the Kubernetes
 * schema validator, caddy, nginx, systemd-analyze) and registers tests that
 * need them: run when the tool is there, fail when it is missing under CI,
 * and otherwise skip with one line saying which tool is missing and how to
 * install it. Never a silent pass.
 * @module
 */
import { join, resolve } from "node:path";
import { inCI } from "../_utils.ts";

export { freePort, inCI } from "../_utils.ts";

/** Root of the work tree (two levels above this file). */
export const ROOT: string = resolve(import.meta.dirname!, "..", "..");

/** The project cache dir used by scripts/install/*.sh. */
export function cacheDirs(): string[] {
  const dirs: string[] = [];
  const env = Deno.env.get("LK_CACHE_DIR");
  if (env) dirs.push(resolve(env));
  dirs.push(join(ROOT, ".cache"));
  return [...new Set(dirs)];
}

/** An external program, found or not. */
export interface Tool {
  /** Short name used in messages, e.g. "helm". */
  name: string;
  /** Absolute path of the executable, when found. */
  path?: string;
  /** Every place that was looked at, for the skip message. */
  looked: string[];
  /** How to install it. */
  install: string;
}

function isExecutable(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/**
 * Looks for `name` in each of `candidates` (absolute paths), then on PATH.
 */
export function findTool(
  name: string,
  options: { candidates?: string[]; install: string; executable?: string },
): Tool {
  const executable = options.executable ?? name;
  const looked: string[] = [];
  for (const candidate of options.candidates ?? []) {
    looked.push(candidate);
    if (isExecutable(candidate)) {
      return { name, path: candidate, looked, install: options.install };
    }
  }
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!dir) continue;
    const candidate = join(dir, executable);
    if (isExecutable(candidate)) {
      return { name, path: candidate, looked, install: options.install };
    }
  }
  looked.push("PATH");
  return { name, looked, install: options.install };
}

/** helm, from the project cache first (scripts/install/helm.sh). */
export function findHelm(): Tool {
  return findTool("helm", {
    candidates: cacheDirs().map((d) => join(d, "bin", "helm")),
    install: "scripts/install/helm.sh",
  });
}

/** kubernetes-validate, from its virtualenv in the project cache. */
export function findKubeValidate(): Tool {
  return findTool("kubernetes-validate", {
    candidates: cacheDirs().map((d) =>
      join(d, "kube-validate", "bin", "kubernetes-validate")
    ),
    install: "scripts/install/kube-schemas.sh",
  });
}

/**
 * Registers a test that needs `tools`. When one is missing: under CI the test
 * fails saying so (unless `optionalInCI`); elsewhere it is registered as
 * ignored and a line says why.
 */
export function testWith(
  tools: Tool[],
  name: string,
  fn: () => void | Promise<void>,
  options: { optionalInCI?: boolean } = {},
): void {
  const missing = tools.filter((t) => t.path === undefined);
  if (missing.length === 0) {
    Deno.test(name, fn);
    return;
  }
  const why = missing.map((t) =>
    `${t.name} not found (looked in ${
      t.looked.join(", ")
    }; install it with ${t.install})`
  ).join("; ");
  if (inCI() && !options.optionalInCI) {
    Deno.test(name, () => {
      throw new Error(`${why}; CI is set, so this test cannot be skipped`);
    });
    return;
  }
  console.log(`SKIP ${name}: ${why}`);
  Deno.test({ name, ignore: true, fn });
}

/** Output of a finished command. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion and returns its exit code and output. */
export async function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<RunResult> {
  const output = await new Deno.Command(command, {
    args,
    cwd: options.cwd ?? ROOT,
    env: options.env ?? {},
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** A request as the stand-in upstream saw it. */
export interface Seen {
  method: string;
  path: string;
  body: string;
  forwardedFor: string | null;
}

/** A stand-in for lk-jwt-service behind a proxy that records what reaches it. */
export function startUpstream() {
  const seen: Seen[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const url = new URL(req.url);
      seen.push({
        method: req.method,
        path: url.pathname + url.search,
        body: await req.text(),
        forwardedFor: req.headers.get("x-forwarded-for"),
      });
      return Response.json({ upstream: true });
    },
  );
  return {
    address: `127.0.0.1:${server.addr.port}`,
    seen,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}
