/** @module A fake Matrix homeserver over HTTPS: OpenID userinfo, MSC4140 delayed events and the well-knowns. */

import type { TestCa } from "./tls.ts";
import { waitFor } from "./wait.ts";

/** One request as the fake saw it, recorded before it is answered. */
export interface RecordedRequest {
  method: string;
  /** URL pathname, still percent-encoded as sent. */
  path: string;
  /** URL query including the leading `?`, or `""`. */
  search: string;
  /** The `Host` header (the `:authority` for HTTP/2). */
  host: string;
  body: string;
  /** `Date.now()` when the request arrived. */
  at: number;
}

/**
 * A canned answer. `body` is sent JSON-encoded, except a string, which is
 * sent as it is (to test bodies that are not JSON); missing means `{}`.
 */
export interface ScriptedAnswer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** Answers for one delay ID; each call takes the next one, then 200 `{}`. */
export interface DelayedScript {
  restart?: ScriptedAnswer[];
  send?: ScriptedAnswer[];
}

/** Start options: the CA that signs the certificate and the names it covers. */
export interface FakeHomeserverOptions {
  ca: TestCa;
  /** DNS names and IP literals; `localhost` and `127.0.0.1` are always added. */
  names: string[];
  /** Address to listen on; 127.0.0.1 by default. */
  hostname?: string;
  /** Port to listen on; a free one by default. */
  port?: number;
}

const USERINFO_PATH = "/_matrix/federation/v1/openid/userinfo";
// MSC4140: POST /_matrix/client/unstable/org.matrix.msc4140/delayed_events/{delay_id}/{action}
const DELAYED_PATH =
  /^\/_matrix\/client\/unstable\/org\.matrix\.msc4140\/delayed_events\/([^/]+)\/(restart|send)$/;

const UNRECOGNIZED: ScriptedAnswer = {
  status: 404,
  body: { errcode: "M_UNRECOGNIZED", error: "Unrecognized request" },
};

/** Turns a canned answer into a Response (null-body statuses get no body). */
function respond(answer: ScriptedAnswer): Response {
  const nullBody = [101, 204, 205, 304].includes(answer.status);
  const body = nullBody
    ? null
    : typeof answer.body === "string"
    ? answer.body
    : JSON.stringify(answer.body ?? {});
  return new Response(body, {
    status: answer.status,
    headers: { "content-type": "application/json", ...answer.headers },
  });
}

/** Path-decodes a delay ID; a malformed escape is kept as sent. */
function decodeId(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** The fake homeserver; build it with {@linkcode startFakeHomeserver}. */
export class FakeHomeserver {
  readonly port: number;
  /** `https://<hostname>:<port>` */
  readonly url: string;
  /** The server's certificate, PEM, as issued by the test CA. */
  readonly certPem: string;
  /** Access token -> the `sub` (user ID) userinfo answers for it. */
  readonly tokens: Map<string, string> = new Map();
  /** Every request, in arrival order. */
  readonly requests: RecordedRequest[] = [];
  /** Answer for GET /.well-known/matrix/server; undefined answers 404. */
  wellKnownServer: ScriptedAnswer | undefined;
  /** Answer for GET /.well-known/matrix/client; undefined answers 404. */
  wellKnownClient: ScriptedAnswer | undefined;
  /** Scripted answers for restart/send, keyed by the decoded delay ID. */
  readonly delayed: Map<string, DelayedScript> = new Map();
  /**
   * When not empty, each userinfo call takes the next answer from here
   * instead of looking at `tokens` (for 5xx, bad JSON and the like).
   */
  userinfoAnswers: ScriptedAnswer[] = [];

  #hang = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #wakers = new Set<() => void>();
  #server: Deno.HttpServer<Deno.NetAddr>;

  constructor(
    cert: { certPem: string; keyPem: string },
    listen: { hostname: string; port: number },
  ) {
    this.#server = Deno.serve({
      ...listen,
      cert: cert.certPem,
      key: cert.keyPem,
      onListen() {}, // no "Listening on" line in test output
    }, (req) => this.#handle(req));
    this.port = this.#server.addr.port;
    this.url = `https://${listen.hostname}:${this.port}`;
    this.certPem = cert.certPem;
  }

  /**
   * When true, every request is recorded and then held until `hang` is set
   * back to false (it is then answered normally) or the server closes (it
   * gets a 503): a homeserver that accepts connections but is dead.
   */
  get hang(): boolean {
    return this.#hang;
  }

  set hang(value: boolean) {
    this.#hang = value;
    if (!value) this.#wakeAll();
  }

  /** Requests to restart (or send) a delayed event, optionally for one ID. */
  calls(kind: "restart" | "send", delayId?: string): RecordedRequest[] {
    return this.requests.filter((r) => {
      const m = DELAYED_PATH.exec(r.path);
      return r.method === "POST" && m?.[2] === kind &&
        (delayId === undefined || decodeId(m[1] ?? "") === delayId);
    });
  }

  /** Requests to the federation OpenID userinfo endpoint. */
  userinfoCalls(): RecordedRequest[] {
    return this.requests.filter((r) => r.path === USERINFO_PATH);
  }

  /** Polls `predicate` every 10 ms; rejects after `timeoutMs`. */
  waitFor(predicate: () => boolean, timeoutMs: number): Promise<void> {
    return waitFor(predicate, timeoutMs);
  }

  /** Releases held requests and stops the server; safe to call twice. */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#closed = true;
      this.#wakeAll();
      this.#closing = this.#server.shutdown().then(() => this.#server.finished);
    }
    return this.#closing;
  }

  #wakeAll(): void {
    for (const wake of this.#wakers) wake();
    this.#wakers.clear();
  }

  /**
   * Waits while `hang` is on; false when the server closed meanwhile. A
   * held request whose client gave up stays held until then: watching
   * `req.signal` instead would make Deno warn about its legacy abort.
   */
  async #holdWhileHanging(): Promise<boolean> {
    while (this.#hang && !this.#closed) {
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#wakers.add(resolve);
      await promise;
    }
    return !this.#closed;
  }

  async #handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    this.requests.push({
      method: req.method,
      path: url.pathname,
      search: url.search,
      host: req.headers.get("host") ?? url.host,
      body: await req.text(),
      at: Date.now(),
    });
    if (!await this.#holdWhileHanging()) {
      return respond({
        status: 503,
        body: { errcode: "M_UNKNOWN", error: "fake homeserver closed" },
      });
    }
    return respond(this.#route(req.method, url));
  }

  #route(method: string, url: URL): ScriptedAnswer {
    const path = url.pathname;
    if (method === "GET" && path === "/.well-known/matrix/server") {
      return this.wellKnownServer ?? UNRECOGNIZED;
    }
    if (method === "GET" && path === "/.well-known/matrix/client") {
      return this.wellKnownClient ?? UNRECOGNIZED;
    }
    if (method === "GET" && path === USERINFO_PATH) {
      const scripted = this.userinfoAnswers.shift();
      if (scripted) return scripted;
      const sub = this.tokens.get(url.searchParams.get("access_token") ?? "");
      if (sub === undefined) {
        return {
          status: 401,
          body: {
            errcode: "M_UNKNOWN_TOKEN",
            error: "Access token unknown or expired",
          },
        };
      }
      return { status: 200, body: { sub } };
    }
    const m = DELAYED_PATH.exec(path);
    if (method === "POST" && m) {
      const kind = m[2] as "restart" | "send";
      const script = this.delayed.get(decodeId(m[1] ?? ""));
      return script?.[kind]?.shift() ?? { status: 200, body: {} };
    }
    return UNRECOGNIZED;
  }
}

/** Starts a fake homeserver (on 127.0.0.1 unless told) with a certificate from `opts.ca`. */
export async function startFakeHomeserver(
  opts: FakeHomeserverOptions,
): Promise<FakeHomeserver> {
  const hostname = opts.hostname ?? "127.0.0.1";
  const names = [
    ...new Set([...opts.names, "localhost", "127.0.0.1", hostname]),
  ];
  return new FakeHomeserver(await opts.ca.issue(names), {
    hostname,
    port: opts.port ?? 0,
  });
}
