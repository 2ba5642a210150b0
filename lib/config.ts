/** @module Service configuration read from the environment (SPEC section 1). */

import { parseCidr } from "./client_ip.ts";

/** The only value of `LIVEKIT_INSECURE_SKIP_VERIFY_TLS` that turns certificate checks off. */
export const INSECURE_SKIP_VERIFY_MAGIC = "YES_I_KNOW_WHAT_I_AM_DOING";

export type LogLevel = "debug" | "info" | "warning" | "error";
export type LogFormat = "text" | "json";

/** A `host:port` pair to listen on; `hostname` is empty for "all interfaces". */
export interface ListenAddress {
  hostname: string;
  port: number;
}

export interface Config {
  livekitUrl: string;
  /** LiveKit API key. */
  key: string;
  /** LiveKit API secret: never logged. */
  secret: string;
  bind: ListenAddress;
  /** The `LIVEKIT_JWT_BIND` text as given (or derived from the port), for logs. */
  bindText: string;
  /** Server names whose users may create rooms, or `"*"` for all. */
  fullAccessHomeservers: readonly string[] | "*";
  skipVerifyTls: boolean;
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** Client-Server API base URLs by server name, from `LIVEKIT_CS_API_URL_OVERRIDES`. */
  csApiUrlOverrides: ReadonlyMap<string, string>;
  redisUrl: string | undefined;
  /** Seconds between presence checks of connected participants; 0 disables them. */
  sanityCheckIntervalSeconds: number;
  /** A `host:port` DNS server to ask instead of the system resolver. */
  dnsServer: { ipAddr: string; port: number } | undefined;
  /** PEM text of the CAs that replace the built-in roots for outgoing TLS (`SSL_CERT_FILE`). */
  caCerts: string | undefined;
  /** Where `/metrics` is served instead of the main listener (`LIVEKIT_METRICS_BIND`). */
  metricsBind: ListenAddress | undefined;
  limits: Limits;
  /** Multi-replica mode (`LIVEKIT_MULTI_REPLICA`): jobs shared through Redis. */
  multiReplica: boolean;
  /** How long a replica's jobs stay its own after its last heartbeat. */
  replicaLeaseMs: number;
  /** Warnings to log once the logger exists. */
  warnings: string[];
}

/** Operational limits (README "Operating"). */
export interface Limits {
  /** Largest request body read, in bytes. */
  maxBodyBytes: number;
  /** Token-route requests a client IP may make per second (0: no limit). */
  rateLimitPerSecond: number;
  /** Requests a client may make at once above the rate. */
  rateLimitBurst: number;
  /** Proxies whose `X-Forwarded-For` is believed: IPs or CIDR ranges. */
  trustedProxies: string[];
  /** Time allowed for userinfo and discovery calls to homeservers. */
  homeserverTimeoutMs: number;
  /** Time allowed for Twirp calls to the SFU. */
  sfuTimeoutMs: number;
  /** Consecutive failures that open a homeserver's circuit (0: never). */
  breakerFailures: number;
  /** How long an open circuit answers at once before one trial call. */
  breakerCooldownMs: number;
  /** Time in-flight requests get to finish at shutdown. */
  shutdownTimeoutMs: number;
  /** Delayed-leave jobs one process runs at most; more are refused with 503. */
  maxJobs: number;
}

/** The start-up refusal: its message is the one line printed before exiting. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

export interface ConfigSources {
  env: (name: string) => string | undefined;
  readTextFile: (path: string) => string;
}

/** Reads the configuration, or throws a {@link ConfigError} naming the variable at fault. */
export function loadConfig(sources: ConfigSources): Config {
  const get = (name: string): string => sources.env(name) ?? "";
  const readVar = (name: string, path: string): string => {
    try {
      return sources.readTextFile(path);
    } catch (err) {
      throw new ConfigError(
        `${name}: cannot read ${JSON.stringify(path)}: ${errorText(err)}`,
      );
    }
  };
  const warnings: string[] = [];

  const livekitUrl = get("LIVEKIT_URL").trim();
  if (livekitUrl === "") {
    throw new ConfigError("LIVEKIT_URL must be set");
  }
  if (!URL.canParse(livekitUrl)) {
    throw new ConfigError(
      `LIVEKIT_URL is not a URL: ${JSON.stringify(livekitUrl)}`,
    );
  }
  const scheme = new URL(livekitUrl).protocol;
  if (!["ws:", "wss:", "http:", "https:"].includes(scheme)) {
    throw new ConfigError(
      `LIVEKIT_URL must start with ws://, wss://, http:// or https://, not ${scheme}//`,
    );
  }

  let key: string;
  let secret: string;
  const keyFile = get("LIVEKIT_KEY_FILE");
  if (keyFile !== "") {
    const parts = readVar("LIVEKIT_KEY_FILE", keyFile).split(":");
    if (parts.length !== 2) {
      throw new ConfigError(
        `LIVEKIT_KEY_FILE: ${
          JSON.stringify(keyFile)
        } must hold exactly "key:secret"`,
      );
    }
    key = trimCredential(parts[0] ?? "");
    secret = trimCredential(parts[1] ?? "");
  } else {
    const keyFromFile = get("LIVEKIT_KEY_FROM_FILE");
    const secretFromFile = get("LIVEKIT_SECRET_FROM_FILE");
    key = trimCredential(
      keyFromFile !== ""
        ? readVar("LIVEKIT_KEY_FROM_FILE", keyFromFile)
        : get("LIVEKIT_KEY"),
    );
    secret = trimCredential(
      secretFromFile !== ""
        ? readVar("LIVEKIT_SECRET_FROM_FILE", secretFromFile)
        : get("LIVEKIT_SECRET"),
    );
  }
  if (key === "") {
    throw new ConfigError(
      "LIVEKIT_KEY (or LIVEKIT_KEY_FROM_FILE or LIVEKIT_KEY_FILE) must be set",
    );
  }
  if (secret === "") {
    throw new ConfigError(
      "LIVEKIT_SECRET (or LIVEKIT_SECRET_FROM_FILE or LIVEKIT_KEY_FILE) must be set",
    );
  }
  if (secret.length < 32) {
    warnings.push(
      `the LiveKit API secret is only ${secret.length} characters long; use at least 32`,
    );
  }

  const { bind, bindText, warning } = listenAddressFromEnv(sources.env);
  if (warning !== undefined) warnings.push(warning);

  const fullAccessList = get("LIVEKIT_FULL_ACCESS_HOMESERVERS")
    .split(/[\s,]+/)
    .filter((s) => s !== "");
  if (fullAccessList.length === 0) {
    throw new ConfigError(
      "LIVEKIT_FULL_ACCESS_HOMESERVERS must name at least one homeserver (or *)",
    );
  }
  const fullAccessHomeservers = fullAccessList.length === 1 &&
      fullAccessList[0] === "*"
    ? "*" as const
    : fullAccessList;

  const skipVerifyTls =
    get("LIVEKIT_INSECURE_SKIP_VERIFY_TLS") === INSECURE_SKIP_VERIFY_MAGIC;

  const levelText = get("LIVEKIT_LOG_LEVEL").trim().toLowerCase();
  const logLevel = LOG_LEVELS[levelText === "" ? "info" : levelText];
  if (logLevel === undefined) {
    warnings.push(
      `LIVEKIT_LOG_LEVEL ${
        JSON.stringify(get("LIVEKIT_LOG_LEVEL"))
      } is not one of debug, info, warn, error; using info`,
    );
  }

  const formatText = get("LIVEKIT_LOG_FORMAT").trim().toLowerCase();
  if (formatText !== "" && formatText !== "text" && formatText !== "json") {
    throw new ConfigError(
      `LIVEKIT_LOG_FORMAT must be text or json, not ${
        JSON.stringify(get("LIVEKIT_LOG_FORMAT"))
      }`,
    );
  }

  const redisFile = get("LIVEKIT_REDIS_URL_FROM_FILE");
  const redisUrl =
    (redisFile !== ""
      ? readVar("LIVEKIT_REDIS_URL_FROM_FILE", redisFile)
      : get("LIVEKIT_REDIS_URL")).trim();
  if (redisUrl !== "" && !/^rediss?:\/\/.+/.test(redisUrl)) {
    throw new ConfigError(
      `${
        redisFile !== "" ? "LIVEKIT_REDIS_URL_FROM_FILE" : "LIVEKIT_REDIS_URL"
      } must be a redis:// or rediss:// URL`,
    );
  }

  const intervalText = get("LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS").trim();
  if (intervalText !== "" && !/^\d+$/.test(intervalText)) {
    throw new ConfigError(
      `LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS must be a non-negative integer, not ${
        JSON.stringify(intervalText)
      }`,
    );
  }

  const dnsText = get("LIVEKIT_DNS_SERVER").trim();
  let dnsServer: Config["dnsServer"];
  if (dnsText !== "") {
    const address = parseListenAddress(dnsText, "LIVEKIT_DNS_SERVER");
    if (address.hostname === "") {
      throw new ConfigError(
        `LIVEKIT_DNS_SERVER must be an IP address and port, not ${
          JSON.stringify(dnsText)
        }`,
      );
    }
    dnsServer = { ipAddr: address.hostname, port: address.port };
  }

  const metricsText = get("LIVEKIT_METRICS_BIND").trim();
  const metricsBind = metricsText === ""
    ? undefined
    : parseListenAddress(metricsText, "LIVEKIT_METRICS_BIND");

  const int = (name: string, fallback: number, min = 0): number => {
    const text = get(name).trim();
    if (text === "") return fallback;
    if (!/^\d+$/.test(text) || Number(text) < min) {
      throw new ConfigError(
        `${name} must be an integer of at least ${min}, not ${
          JSON.stringify(text)
        }`,
      );
    }
    return Number(text);
  };
  const trustedProxies = get("LIVEKIT_TRUSTED_PROXIES").split(/[\s,]+/)
    .filter((s) => s !== "");
  for (const entry of trustedProxies) {
    if (parseCidr(entry) === undefined) {
      throw new ConfigError(
        `LIVEKIT_TRUSTED_PROXIES entry ${
          JSON.stringify(entry)
        } is not an IP address or CIDR range`,
      );
    }
  }
  const limits: Limits = {
    maxBodyBytes: int("LIVEKIT_MAX_BODY_BYTES", 64 * 1024, 1024),
    rateLimitPerSecond: int("LIVEKIT_RATE_LIMIT_PER_SECOND", 0),
    rateLimitBurst: int("LIVEKIT_RATE_LIMIT_BURST", 20, 1),
    trustedProxies,
    homeserverTimeoutMs: int("LIVEKIT_HOMESERVER_TIMEOUT_SECONDS", 10, 1) *
      1000,
    sfuTimeoutMs: int("LIVEKIT_SFU_TIMEOUT_SECONDS", 5, 1) * 1000,
    breakerFailures: int("LIVEKIT_BREAKER_FAILURES", 5),
    breakerCooldownMs: int("LIVEKIT_BREAKER_COOLDOWN_SECONDS", 30, 1) * 1000,
    shutdownTimeoutMs: int("LIVEKIT_SHUTDOWN_TIMEOUT_SECONDS", 10, 1) * 1000,
    maxJobs: int("LIVEKIT_MAX_JOBS", 10_000, 1),
  };

  const multiText = get("LIVEKIT_MULTI_REPLICA").trim().toLowerCase();
  if (!["", "true", "false", "1", "0"].includes(multiText)) {
    throw new ConfigError(
      `LIVEKIT_MULTI_REPLICA must be true or false, not ${
        JSON.stringify(get("LIVEKIT_MULTI_REPLICA"))
      }`,
    );
  }
  const multiReplica = multiText === "true" || multiText === "1";
  if (multiReplica && redisUrl === "") {
    throw new ConfigError(
      "LIVEKIT_MULTI_REPLICA needs LIVEKIT_REDIS_URL: replicas share jobs through Redis",
    );
  }

  const caFile = get("SSL_CERT_FILE");
  const caCerts = caFile === "" ? undefined : readVar("SSL_CERT_FILE", caFile);

  return {
    livekitUrl,
    key,
    secret,
    bind,
    bindText,
    fullAccessHomeservers,
    skipVerifyTls,
    logLevel: logLevel ?? "info",
    logFormat: formatText === "json" ? "json" : "text",
    csApiUrlOverrides: parseOverrides(get("LIVEKIT_CS_API_URL_OVERRIDES")),
    redisUrl: redisUrl === "" ? undefined : redisUrl,
    sanityCheckIntervalSeconds: intervalText === "" ? 0 : Number(intervalText),
    dnsServer,
    caCerts,
    metricsBind,
    limits,
    multiReplica,
    replicaLeaseMs: int("LIVEKIT_REPLICA_LEASE_SECONDS", 10, 2) * 1000,
    warnings,
  };
}

const LOG_LEVELS: Record<string, LogLevel | undefined> = {
  debug: "debug",
  info: "info",
  warn: "warning",
  warning: "warning",
  error: "error",
};

/** Key and secret values lose surrounding spaces and line breaks, as in the reference. */
function trimCredential(value: string): string {
  return value.replace(/^[ \r\n]+|[ \r\n]+$/g, "");
}

/**
 * The listen address from `LIVEKIT_JWT_BIND` or the deprecated
 * `LIVEKIT_JWT_PORT`, `:8080` by default; shared with the healthcheck.
 */
export function listenAddressFromEnv(
  env: (name: string) => string | undefined,
): { bind: ListenAddress; bindText: string; warning?: string } {
  const bindVar = env("LIVEKIT_JWT_BIND") ?? "";
  const portVar = env("LIVEKIT_JWT_PORT") ?? "";
  if (bindVar !== "" && portVar !== "") {
    throw new ConfigError(
      "LIVEKIT_JWT_BIND and LIVEKIT_JWT_PORT must not both be set",
    );
  }
  if (portVar !== "") {
    const bindText = `:${portVar}`;
    return {
      bind: parseListenAddress(bindText, "LIVEKIT_JWT_PORT"),
      bindText,
      warning:
        "LIVEKIT_JWT_PORT is deprecated; use LIVEKIT_JWT_BIND=:<port> instead",
    };
  }
  const bindText = bindVar === "" ? ":8080" : bindVar;
  return {
    bind: parseListenAddress(bindText, "LIVEKIT_JWT_BIND"),
    bindText,
  };
}

/**
 * Parses `host:port`, `:port` or `[v6]:port`.
 * @param name the variable named in the error
 */
export function parseListenAddress(text: string, name: string): ListenAddress {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]]*)):(\d{1,5})$/.exec(
    text.trim(),
  );
  const port = Number(match?.[3]);
  if (match === null || port > 65535) {
    throw new ConfigError(
      `${name} must look like host:port, :port or [::1]:port, not ${
        JSON.stringify(text)
      }`,
    );
  }
  return { hostname: match[1] ?? match[2] ?? "", port };
}

function parseOverrides(text: string): Map<string, string> {
  const overrides = new Map<string, string>();
  if (text.trim() === "") return overrides;
  for (const entry of text.split(",")) {
    const eq = entry.indexOf("=");
    const server = eq < 0 ? "" : entry.slice(0, eq).trim();
    const url = eq < 0 ? "" : entry.slice(eq + 1).trim();
    if (server === "" || url === "") {
      throw new ConfigError(
        `LIVEKIT_CS_API_URL_OVERRIDES entry ${
          JSON.stringify(entry)
        } must be server_name=url`,
      );
    }
    if (!/^https?:\/\//.test(url) || !URL.canParse(url)) {
      throw new ConfigError(
        `LIVEKIT_CS_API_URL_OVERRIDES entry for ${server}: ${
          JSON.stringify(url)
        } is not an http(s) URL`,
      );
    }
    overrides.set(server, url.replace(/\/+$/, ""));
  }
  return overrides;
}

/** The message of any thrown value. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
