/**
 * @module Lean fakes for the bench: a homeserver over HTTPS (keep-alive, a
 * distinct OpenID token per request, answers from memory, records nothing
 * but counters) and a LiveKit SFU answering Twirp with canned protobuf.
 * The test fakes record every request, which would make them the bottleneck.
 */

import { Room } from "@livekit/protocol";

const USERINFO = "/_matrix/federation/v1/openid/userinfo";
const DELAYED = "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/";
const JSON_HEADERS = { "content-type": "application/json" };

/** Counters of one fake; `connections` counts distinct client ports seen. */
export interface FakeCounters {
  requests: number;
  connections: number;
}

/** Distinct peers (client ports) since the last reset: new TCP connections. */
class ConnectionCounter {
  #ports = new Set<number>();
  seen(info: Deno.ServeHandlerInfo<Deno.NetAddr>): void {
    this.#ports.add(info.remoteAddr.port);
  }
  get count(): number {
    return this.#ports.size;
  }
  reset(): void {
    this.#ports.clear();
  }
}

export interface BenchHomeserverOptions {
  certPem: string;
  keyPem: string;
  /** Ports to listen on (0 = any); each is a distinct server name `127.0.0.1:<port>`. */
  ports: number[];
}

/**
 * A homeserver on 127.0.0.1 on several ports, so that `127.0.0.1:<a>` can
 * be full-access and `127.0.0.1:<b>` restricted. `tok-<n>` is the OpenID
 * token of `@u<n>:<server name>` (the Host header); any other token is 401.
 */
export class BenchHomeserver {
  readonly ports: number[];
  userinfo = 0;
  restarts = 0;
  sends = 0;
  wellKnown = 0;
  /** Delay IDs restarted at least once: jobs that reached Connected. */
  readonly restarted = new Set<string>();
  readonly #connections = new ConnectionCounter();
  readonly #servers: Deno.HttpServer<Deno.NetAddr>[];

  constructor(options: BenchHomeserverOptions) {
    this.#servers = options.ports.map((port) =>
      Deno.serve({
        hostname: "127.0.0.1",
        port,
        cert: options.certPem,
        key: options.keyPem,
        onListen() {},
      }, (req, info) => this.#handle(req, info))
    );
    this.ports = this.#servers.map((s) => s.addr.port);
  }

  /** `127.0.0.1:<port>` of the i-th listener. */
  serverName(i: number): string {
    return `127.0.0.1:${this.ports[i]}`;
  }

  get counters(): FakeCounters {
    return {
      requests: this.userinfo + this.restarts + this.sends + this.wellKnown,
      connections: this.#connections.count,
    };
  }

  resetConnections(): void {
    this.#connections.reset();
  }

  async close(): Promise<void> {
    await Promise.all(this.#servers.map((s) => s.shutdown()));
  }

  async #handle(
    req: Request,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ): Promise<Response> {
    this.#connections.seen(info);
    const url = req.url;
    // req.url is absolute: skip "https://host:port".
    const pathStart = url.indexOf("/", 8);
    const query = url.indexOf("?", pathStart);
    const path = query === -1
      ? url.slice(pathStart)
      : url.slice(pathStart, query);
    if (path === USERINFO) {
      this.userinfo++;
      const at = url.indexOf("access_token=tok-", query);
      if (query === -1 || at === -1) {
        return Response.json({ errcode: "M_UNKNOWN_TOKEN" }, { status: 401 });
      }
      const end = url.indexOf("&", at);
      const n = url.slice(at + 17, end === -1 ? undefined : end);
      // The authority as sent (Host, or :authority over HTTP/2).
      const host = url.slice(8, pathStart);
      return new Response(`{"sub":"@u${decodeURIComponent(n)}:${host}"}`, {
        headers: JSON_HEADERS,
      });
    }
    if (path.startsWith(DELAYED) && req.method === "POST") {
      await req.arrayBuffer();
      const rest = path.slice(DELAYED.length);
      const slash = rest.lastIndexOf("/");
      const action = rest.slice(slash + 1);
      if (action === "restart") {
        this.restarts++;
        this.restarted.add(rest.slice(0, slash));
      } else if (action === "send") {
        this.sends++;
      }
      return new Response("{}", { headers: JSON_HEADERS });
    }
    if (path === "/.well-known/matrix/client") {
      this.wellKnown++;
      // The authority as sent (Host, or :authority over HTTP/2).
      const host = url.slice(8, pathStart);
      return Response.json({ "m.homeserver": { base_url: `https://${host}` } });
    }
    return Response.json({ errcode: "M_UNRECOGNIZED" }, { status: 404 });
  }
}

const TWIRP = "/twirp/livekit.RoomService/";

/**
 * An SFU whose CreateRoom answers a canned fresh `Room` and whose
 * GetParticipant answers `not_found` (nobody is ever on it), so that
 * delayed-leave jobs become connected through webhooks only.
 */
export class BenchSfu {
  readonly port: number;
  /** `ws://127.0.0.1:<port>`: LIVEKIT_URL. */
  readonly url: string;
  createRoom = 0;
  getParticipant = 0;
  readonly #connections = new ConnectionCounter();
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #room = new Room({
    sid: "RM_bench",
    name: "bench",
    emptyTimeout: 300,
    departureTimeout: 20,
  }).toBinary() as Uint8Array<ArrayBuffer>;

  constructor(port = 0) {
    this.#server = Deno.serve({
      hostname: "127.0.0.1",
      port,
      onListen() {},
    }, (req, info) => this.#handle(req, info));
    this.port = this.#server.addr.port;
    this.url = `ws://127.0.0.1:${this.port}`;
  }

  get counters(): FakeCounters {
    return {
      requests: this.createRoom + this.getParticipant,
      connections: this.#connections.count,
    };
  }

  resetConnections(): void {
    this.#connections.reset();
  }

  async close(): Promise<void> {
    await this.#server.shutdown();
  }

  async #handle(
    req: Request,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ): Promise<Response> {
    this.#connections.seen(info);
    await req.arrayBuffer();
    const url = req.url;
    const method = url.slice(url.indexOf(TWIRP, 7) + TWIRP.length);
    if (!req.headers.get("authorization")?.startsWith("Bearer ")) {
      return Response.json({ code: "unauthenticated", msg: "no token" }, {
        status: 401,
      });
    }
    if (method === "CreateRoom") {
      this.createRoom++;
      return new Response(this.#room, {
        headers: { "content-type": "application/protobuf" },
      });
    }
    if (method === "GetParticipant") {
      this.getParticipant++;
      return Response.json(
        { code: "not_found", msg: "participant not found" },
        {
          status: 404,
        },
      );
    }
    return Response.json({ code: "bad_route", msg: method }, { status: 404 });
  }
}
