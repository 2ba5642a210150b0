/**
 * @module lk-jwt-service: the MatrixRTC Authorization Service for LiveKit.
 * `lk-jwt-service` serves; `lk-jwt-service healthcheck` probes a running one.
 */

import { ConfigError, listenAddressFromEnv, loadConfig } from "./lib/config.ts";
import { setupLogging } from "./lib/log.ts";
import { buildService } from "./lib/service.ts";

async function serve(): Promise<number> {
  let config;
  try {
    config = loadConfig({
      env: (name) => Deno.env.get(name),
      readTextFile: Deno.readTextFileSync,
    });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`lk-jwt-service: ${err.message}`);
    return 1;
  }
  const log = await setupLogging({
    level: config.logLevel,
    format: config.logFormat,
  });
  for (const warning of config.warnings) log.warn(warning);
  if (config.skipVerifyTls) {
    log.warn(
      "LIVEKIT_INSECURE_SKIP_VERIFY_TLS is on: certificates of homeservers are NOT checked; never do this in production",
    );
  }

  let service;
  try {
    service = await buildService(config, log);
  } catch (err) {
    console.error(
      `lk-jwt-service: ${err instanceof Error ? err.message : String(err)}`,
    );
    return 1;
  }

  const server = Deno.serve({
    hostname: config.bind.hostname === "" ? "0.0.0.0" : config.bind.hostname,
    port: config.bind.port,
    onListen: (addr) =>
      log.info("Listening on {address}", {
        address: `${addr.hostname}:${addr.port}`,
        livekitUrl: config.livekitUrl,
        fullAccess: config.fullAccessHomeservers === "*"
          ? "*"
          : config.fullAccessHomeservers.join(","),
      }),
  }, service.handler);
  const metricsServer = config.metricsBind === undefined
    ? undefined
    : Deno.serve({
      hostname: config.metricsBind.hostname === ""
        ? "0.0.0.0"
        : config.metricsBind.hostname,
      port: config.metricsBind.port,
      onListen: (addr) =>
        log.info("Serving /metrics on {address}", {
          address: `${addr.hostname}:${addr.port}`,
        }),
    }, (request) =>
      new URL(request.url).pathname === "/metrics"
        ? service.metrics.render()
        : new Response("Not found\n", { status: 404 }));

  const stopping = Promise.withResolvers<string>();
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, () => stopping.resolve(signal));
  }
  const signal = await stopping.promise;
  log.info("Received {signal}: stopping", { signal });
  // Jobs stop without sending: their records stay for the next start.
  service.jobs.shutdown();
  const drained = await Promise.race([
    Promise.all([server.shutdown(), metricsServer?.shutdown()]).then(() =>
      true
    ),
    new Promise<boolean>((r) =>
      setTimeout(() => r(false), config.limits.shutdownTimeoutMs)
    ),
  ]);
  if (!drained) log.warn("In-flight requests did not finish in time");
  // Redis connections close within the same bound, or the process exits anyway.
  const closed = await Promise.race([
    service.close().then(() => true),
    new Promise<boolean>((r) =>
      setTimeout(() => r(false), config.limits.shutdownTimeoutMs)
    ),
  ]);
  if (!closed) log.warn("Closing the Redis connections did not finish in time");
  log.info("Stopped");
  return 0;
}

/** Probes `/healthz` on the configured listen address; exit 0 when it answers 200. */
async function healthcheck(): Promise<number> {
  try {
    const { bind } = listenAddressFromEnv((name) => Deno.env.get(name));
    // A wildcard listener is reached on loopback of the same family.
    const host = bind.hostname === "" || bind.hostname === "0.0.0.0"
      ? "127.0.0.1"
      : bind.hostname === "::"
      ? "[::1]"
      : bind.hostname.includes(":")
      ? `[${bind.hostname}]`
      : bind.hostname;
    const response = await fetch(`http://${host}:${bind.port}/healthz`, {
      signal: AbortSignal.timeout(3_000),
    });
    await response.body?.cancel();
    if (response.status === 200) return 0;
    console.error(`healthcheck: /healthz answered ${response.status}`);
  } catch (err) {
    console.error(
      `healthcheck: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  return 1;
}

if (import.meta.main) {
  Deno.exit(
    Deno.args[0] === "healthcheck" ? await healthcheck() : await serve(),
  );
}
