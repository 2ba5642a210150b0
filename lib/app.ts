/** @module The HTTP routes of the service (SPEC sections 2 to 6), as one request handler. */

import { withContext } from "@logtape/logtape";
import { CircuitOpenError } from "./circuit_breaker.ts";
import type { ClientIpResolver } from "./client_ip.ts";
import type { Config } from "./config.ts";
import {
  badJson,
  MatrixError,
  matrixErrorBody,
  retryLater,
  unauthorized,
} from "./errors.ts";
import type { Logger } from "./log.ts";
import { type Metrics, routeLabel } from "./metrics.ts";
import type { RateLimiter } from "./rate_limit.ts";
import {
  participantIdentity,
  roomName,
  type TokenSigner,
} from "./livekit/token.ts";
import {
  decodeBody,
  LEGACY_TOKEN_REQUEST,
  type LegacyTokenRequest,
  type OpenIdToken,
  TOKEN_REQUEST,
  type TokenRequest,
} from "./request_body.ts";

/** What a delayed-leave job is started with. */
export interface DelayedLeaveRequest {
  delayId: string;
  /** Milliseconds, as the client sent it. */
  delayTimeoutMs: number;
  serverName: string;
  room: string;
  identity: string;
}

/** The parts the routes need; each is replaceable in tests. */
export interface AppDeps {
  config: Pick<Config, "livekitUrl" | "fullAccessHomeservers">;
  signer: TokenSigner;
  verifier: {
    verify(accessToken: string, serverName: string): Promise<string>;
  };
  rooms: { createRoom(name: string): Promise<{ created: boolean }> };
  clientDiscovery: { resolve(serverName: string): Promise<string | undefined> };
  /** Starts a job; throws a {@link MatrixError} (503 shutting down, 400 invalid). */
  jobs: { start(request: DelayedLeaveRequest): Promise<void> };
  /** Verifies and applies an SFU webhook; throws a {@link MatrixError} when refused. */
  webhook: {
    handle(body: string, authorization: string | null): Promise<void>;
  };
  /** Whether the service can do its job; a reason when it cannot. */
  readiness: () => Promise<string | undefined>;
  log: Logger;
  /** Largest accepted request body. */
  maxBodyBytes: number;
  metrics: Metrics;
  /** Whether `/metrics` is served here (not on `LIVEKIT_METRICS_BIND`). */
  serveMetrics: boolean;
  /** Limits token-route requests per client IP. */
  rateLimiter: RateLimiter;
  clientIp: ClientIpResolver;
}

/** The peer of a request, as `Deno.serve` tells it. */
export interface ConnectionInfo {
  remoteAddr: { hostname: string };
}

/** A request handler: `(request, connection?) => response`. */
export type Handler = (
  request: Request,
  info?: ConnectionInfo,
) => Promise<Response>;

/** A client's `X-Request-Id` is kept when it is short and plain; otherwise one is made. */
export function requestIdOf(header: string | null): string {
  return header !== null && /^[A-Za-z0-9._:-]{1,128}$/.test(header)
    ? header
    : crypto.randomUUID();
}

const CORS_HEADERS = {
  "Content-Type": "application/json",
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Methods": "POST",
  "Access-Control-Allow-Headers":
    "Accept, Content-Type, Content-Length, Accept-Encoding, X-CSRF-Token",
};

/**
 * Builds the service's request handler: every answer carries an
 * `X-Request-Id`, which is on every log line of its request, and is counted
 * in the metrics by route and status.
 */
export function createHandler(deps: AppDeps): Handler {
  const routes = new Routes(deps);
  return async (request, info) => {
    const started = performance.now();
    const path = new URL(request.url).pathname;
    const requestId = requestIdOf(request.headers.get("X-Request-Id"));
    const response = await withContext(
      { requestId },
      () => answer(path, request, info),
    );
    response.headers.set("X-Request-Id", requestId);
    const route = routeLabel(path);
    deps.metrics.requests.inc({ route, status: String(response.status) });
    deps.metrics.requestDuration.observe(
      { route },
      (performance.now() - started) / 1000,
    );
    return response;
  };

  async function answer(
    path: string,
    request: Request,
    info: ConnectionInfo | undefined,
  ): Promise<Response> {
    try {
      return await routes.dispatch(path, request, info);
    } catch (err) {
      const clientRoute = CLIENT_ROUTES.has(path);
      if (err instanceof MatrixError) {
        return json(err.status, matrixErrorBody(err), {
          ...(clientRoute ? CORS_HEADERS : {}),
          ...err.headers,
        });
      }
      deps.log.error("Unexpected error handling {path}", {
        path,
        error: err instanceof Error ? err.message : String(err),
      });
      return json(
        500,
        JSON.stringify({ errcode: "M_UNKNOWN", error: "Internal error" }),
        clientRoute ? CORS_HEADERS : {},
      );
    }
  }
}

const CLIENT_ROUTES = new Set([
  "/get_token",
  "/sfu/get",
  "/delegate_delayed_leave",
]);

class Routes {
  readonly #deps: AppDeps;

  constructor(deps: AppDeps) {
    this.#deps = deps;
  }

  async dispatch(
    path: string,
    request: Request,
    info: ConnectionInfo | undefined,
  ): Promise<Response> {
    if (CLIENT_ROUTES.has(path)) {
      if (request.method === "OPTIONS") {
        return new Response(null, { status: 200, headers: CORS_HEADERS });
      }
      if (request.method !== "POST") throw methodNotAllowed();
      this.#rateLimit(path, request, info);
      const text = await this.#readBody(request);
      const body = path === "/get_token"
        ? await this.#getToken(text)
        : path === "/sfu/get"
        ? await this.#legacyGetToken(text)
        : await this.#delegateDelayedLeave(text);
      return json(200, JSON.stringify(body), CORS_HEADERS);
    }
    switch (path) {
      case "/sfu_webhook": {
        if (request.method !== "POST") throw methodNotAllowed();
        const text = await this.#readBody(request);
        await this.#deps.webhook.handle(
          text,
          request.headers.get("Authorization"),
        );
        return new Response(null, { status: 200 });
      }
      case "/healthz":
        if (request.method !== "GET" && request.method !== "HEAD") {
          throw methodNotAllowed();
        }
        return new Response(null, { status: 200 });
      case "/readyz": {
        if (request.method !== "GET" && request.method !== "HEAD") {
          throw methodNotAllowed();
        }
        const reason = await this.#deps.readiness();
        return reason === undefined
          ? json(200, JSON.stringify({ status: "ready" }))
          : json(503, JSON.stringify({ status: "unready", reason }));
      }
      case "/metrics":
        if (!this.#deps.serveMetrics) break;
        if (request.method !== "GET") throw methodNotAllowed();
        return await this.#deps.metrics.render();
    }
    throw new MatrixError(404, "M_NOT_FOUND", "No such route");
  }

  /** 429 `M_LIMIT_EXCEEDED` when the client's bucket is empty. */
  #rateLimit(
    path: string,
    request: Request,
    info: ConnectionInfo | undefined,
  ): void {
    if (info === undefined) return;
    const client = this.#deps.clientIp.resolve(
      info.remoteAddr.hostname,
      request.headers.get("X-Forwarded-For"),
    );
    const waitMs = this.#deps.rateLimiter.take(client);
    if (waitMs > 0) {
      this.#deps.metrics.rateLimited.inc({ route: path });
      throw retryLater(
        429,
        "M_LIMIT_EXCEEDED",
        "Too many requests; retry later",
        waitMs,
      );
    }
  }

  /** `POST /get_token` (MSC4195), checks in SPEC 3's order. */
  async #getToken(text: string): Promise<{ url: string; jwt: string }> {
    const member = await this.#verifiedMember(text, false);
    return await this.#admit(member);
  }

  /**
   * The field checks, OpenID verification and claimed-user check shared by
   * `/get_token` and `/delegate_delayed_leave` (SPEC 3 steps 1 to 5).
   */
  async #verifiedMember(
    text: string,
    delayRequired: boolean,
  ): Promise<Admission> {
    const req = decodeBody<TokenRequest>(text, TOKEN_REQUEST);
    if (req.room_id === "" || req.slot_id === "") {
      throw badJson("The request body room_id or slot_id is missing");
    }
    const m = req.member;
    if (m.id === "" || m.claimed_user_id === "" || m.claimed_device_id === "") {
      throw badJson(
        "The request body member must have id, claimed_user_id and claimed_device_id",
      );
    }
    checkOpenIdToken(req.openid_token);
    const delay = delayParameters(req);
    if (delayRequired && delay === undefined) {
      throw badJson("The request body delay_id or delay_timeout is missing");
    }
    const userId = await this.#verify(req.openid_token);
    if (userId !== m.claimed_user_id) {
      this.#deps.log.warn(
        "OpenID user {matrixUser} does not match the claimed user {claimedUser}",
        { matrixUser: userId, claimedUser: m.claimed_user_id },
      );
      throw unauthorized();
    }
    return {
      serverName: req.openid_token.matrix_server_name,
      userId,
      room: await roomName(req.room_id, req.slot_id),
      identity: await participantIdentity(
        userId,
        m.claimed_device_id,
        m.id,
      ),
      delay,
    };
  }

  /** `POST /sfu/get`, the pre-MSC4195 endpoint (SPEC 4). */
  async #legacyGetToken(text: string): Promise<{ url: string; jwt: string }> {
    const req = decodeBody<LegacyTokenRequest>(text, LEGACY_TOKEN_REQUEST);
    if (req.room === "") throw badJson("The request body room is missing");
    checkOpenIdToken(req.openid_token);
    const delay = delayParameters(req);
    const userId = await this.#verify(req.openid_token);
    return await this.#admit({
      serverName: req.openid_token.matrix_server_name,
      userId,
      room: await roomName(req.room, "m.call#ROOM"),
      identity: `${userId}:${req.device_id}`,
      delay,
    });
  }

  /** `POST /delegate_delayed_leave` (SPEC 5): a job, no token, no room. */
  async #delegateDelayedLeave(text: string): Promise<Record<string, never>> {
    const a = await this.#verifiedMember(text, true);
    if (!this.#isFullAccess(a.serverName)) {
      throw new MatrixError(
        403,
        "M_FORBIDDEN",
        "Delayed event delegation is only available to users of full-access homeservers",
      );
    }
    await this.#requireCsApi(a.serverName);
    await this.#deps.jobs.start({
      ...a.delay!,
      serverName: a.serverName,
      room: a.room,
      identity: a.identity,
    });
    return {};
  }

  /** Steps 6 to 9 of SPEC 3, shared by both token routes. */
  async #admit(a: Admission): Promise<{ url: string; jwt: string }> {
    const log = this.#deps.log.with({
      matrixUser: a.userId,
      room: a.room,
      identity: a.identity,
    });
    const fullAccess = this.#isFullAccess(a.serverName);
    if (a.delay !== undefined && !fullAccess) {
      throw badJson(
        "Delayed event delegation is only available to users of full-access homeservers",
      );
    }
    // Checked before the room is created, so a refusal leaves no room behind;
    // the job finds the (then cached) URL again for each call.
    if (a.delay !== undefined) await this.#requireCsApi(a.serverName);
    // One line per token: whether the room was made is a field of it.
    let room: "created" | "existed" | undefined;
    if (fullAccess) {
      try {
        const { created } = await this.#deps.rooms.createRoom(a.room);
        room = created ? "created" : "existed";
      } catch (err) {
        log.error("Unable to create LiveKit room: {error}", {
          error: err instanceof Error ? err.message : String(err),
        });
        throw new MatrixError(500, "M_UNKNOWN", "Unable to create room on SFU");
      }
    }
    if (a.delay !== undefined) {
      await this.#deps.jobs.start({
        ...a.delay,
        serverName: a.serverName,
        room: a.room,
        identity: a.identity,
      });
    }
    log.info("Issued token", {
      access: fullAccess ? "full" : "restricted",
      ...(room === undefined ? {} : { livekitRoom: room }),
    });
    return {
      url: this.#deps.config.livekitUrl,
      jwt: await this.#deps.signer.participantToken(a.identity, a.room),
    };
  }

  async #verify(token: OpenIdToken): Promise<string> {
    try {
      return await this.#deps.verifier.verify(
        token.access_token,
        token.matrix_server_name,
      );
    } catch (err) {
      if (err instanceof CircuitOpenError) {
        this.#deps.metrics.breakerRejections.inc();
        throw retryLater(
          503,
          "M_UNKNOWN",
          `The homeserver ${token.matrix_server_name} is not answering; retry later`,
          err.retryAfterMs,
        );
      }
      this.#deps.log.warn("OpenID verification failed: {reason}", {
        serverName: token.matrix_server_name,
        reason: err instanceof Error ? err.message : String(err),
      });
      throw unauthorized();
    }
  }

  /** SPEC 3 step 7: a delegation needs the homeserver's Client-Server API. */
  async #requireCsApi(serverName: string): Promise<void> {
    if (await this.#deps.clientDiscovery.resolve(serverName) === undefined) {
      throw badJson(
        `Unable to find the Client-Server API of ${serverName} for delayed events`,
      );
    }
  }

  #isFullAccess(serverName: string): boolean {
    const list = this.#deps.config.fullAccessHomeservers;
    return list === "*" || list.includes(serverName);
  }

  async #readBody(request: Request): Promise<string> {
    const limit = this.#deps.maxBodyBytes;
    const declared = Number(request.headers.get("Content-Length") ?? "0");
    if (declared > limit) throw tooLarge(limit);
    // With a Content-Length the server stops at it: read in one go, which is
    // much cheaper than iterating the body stream.
    if (request.headers.has("Content-Length")) return await request.text();
    if (request.body === null) return "";
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of request.body) {
      size += chunk.length;
      if (size > limit) throw tooLarge(limit);
      chunks.push(chunk);
    }
    const bytes = new Uint8Array(size);
    let offset = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, offset);
      offset += chunk.length;
    }
    return new TextDecoder().decode(bytes);
  }
}

/** A verified call member, ready to be admitted. */
interface Admission {
  serverName: string;
  userId: string;
  room: string;
  identity: string;
  delay: DelayParameters | undefined;
}

interface DelayParameters {
  delayId: string;
  delayTimeoutMs: number;
}

function checkOpenIdToken(token: OpenIdToken): void {
  if (token.access_token === "" || token.matrix_server_name === "") {
    throw badJson(
      "The request body openid_token must have access_token and matrix_server_name",
    );
  }
}

/** The delay pair, both or neither (SPEC 3 step 4). */
function delayParameters(
  req: { delay_id: string; delay_timeout: number },
): DelayParameters | undefined {
  const hasId = req.delay_id !== "";
  const hasTimeout = req.delay_timeout > 0;
  if (hasId !== hasTimeout) {
    throw badJson(
      "The request body must have both delay_id and a positive delay_timeout, or neither",
    );
  }
  return hasId
    ? { delayId: req.delay_id, delayTimeoutMs: req.delay_timeout }
    : undefined;
}

function methodNotAllowed(): MatrixError {
  return new MatrixError(405, "M_UNRECOGNIZED", "Method not allowed");
}

function tooLarge(limit: number): MatrixError {
  return new MatrixError(
    413,
    "M_TOO_LARGE",
    `The request body is larger than ${limit} bytes`,
  );
}

function json(
  status: number,
  body: string,
  headers: Record<string, string> = {},
): Response {
  return new Response(body, {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}
