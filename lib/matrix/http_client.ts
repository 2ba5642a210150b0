/**
 * @module Outgoing HTTP(S) to homeservers, with the control Matrix server
 * discovery needs: connect to one address, check the certificate against
 * another name, send a third as Host; pooled keep-alive connections.
 */

import http from "node:http";
import https from "node:https";
import { isIP } from "node:net";
import type { Resolver } from "./dns.ts";

export interface HomeserverRequest {
  method: "GET" | "POST";
  /** The request's URL; its host (with port, if any) is the Host header. */
  url: URL;
  /** Where to connect when not the URL's host and port (an SRV target). */
  connectTo?: { host: string; port: number };
  /** The name the certificate must be valid for, when not the URL's host. */
  tlsName?: string;
  /** The Host header, when not the URL's host. */
  hostHeader?: string;
  /** A JSON body; sent with `Content-Type: application/json`. */
  json?: unknown;
  timeoutMs: number;
}

export interface HomeserverResponse {
  status: number;
  headers: Headers;
  body: string;
}

/** A failure before any HTTP answer: DNS, TCP, TLS, timeout or an oversized body. */
export class TransportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TransportError";
  }
}

/** Largest answer read from a homeserver; Matrix answers here are tiny. */
export const MAX_RESPONSE_BYTES = 1024 * 1024;

export interface HttpClientOptions {
  resolver: Resolver;
  /** Turns certificate checks off (`LIVEKIT_INSECURE_SKIP_VERIFY_TLS`). */
  skipVerifyTls: boolean;
  /** PEM CAs replacing the built-in roots (`SSL_CERT_FILE`). */
  caCerts?: string | undefined;
}

/** Sends requests to homeservers over pooled connections. */
export class HomeserverHttpClient {
  readonly #resolver: Resolver;
  readonly #httpsAgent: https.Agent;
  readonly #httpAgent: http.Agent;

  constructor(options: HttpClientOptions) {
    this.#resolver = options.resolver;
    this.#httpsAgent = new https.Agent({
      keepAlive: true,
      maxSockets: 64,
      // As many as may be busy: fewer makes every burst above it open
      // (and TLS-handshake) new connections.
      maxFreeSockets: 64,
      rejectUnauthorized: !options.skipVerifyTls,
      ...(options.caCerts === undefined ? {} : { ca: options.caCerts }),
    });
    this.#httpAgent = new http.Agent({
      keepAlive: true,
      maxSockets: 64,
      // As many as may be busy: fewer makes every burst above it open
      // (and TLS-handshake) new connections.
      maxFreeSockets: 64,
    });
  }

  /** Sends one request; any HTTP status is an answer, anything else a {@link TransportError}. */
  request(req: HomeserverRequest): Promise<HomeserverResponse> {
    const secure = req.url.protocol === "https:";
    const urlHost = req.url.hostname.replace(/^\[(.*)\]$/, "$1");
    const connectHost = req.connectTo?.host ?? urlHost;
    const port = req.connectTo?.port ??
      (req.url.port === "" ? (secure ? 443 : 80) : Number(req.url.port));
    const tlsName = req.tlsName ?? urlHost;
    const body = req.json === undefined ? undefined : JSON.stringify(req.json);
    const resolver = this.#resolver;

    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (message: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        request.destroy();
        reject(new TransportError(message));
      };
      const options: https.RequestOptions = {
        method: req.method,
        // The socket is opened to `host`, which is also what the certificate is
        // checked against; `lookup` sends it to the real address instead.
        host: tlsName,
        port,
        path: `${req.url.pathname}${req.url.search}`,
        headers: {
          Host: req.hostHeader ?? req.url.host,
          Accept: "application/json",
          ...(body === undefined ? {} : {
            "Content-Type": "application/json",
            "Content-Length": String(new TextEncoder().encode(body).length),
          }),
        },
        agent: secure ? this.#httpsAgent : this.#httpAgent,
        lookup: (_name, opts, callback) => {
          const all = typeof opts === "object" && opts?.all === true;
          addressesOf(resolver, connectHost).then(
            (addresses) => {
              const list = addresses.map((address) => ({
                address,
                family: isIP(address) === 6 ? 6 : 4,
              }));
              const first = list[0]!;
              // deno-lint-ignore no-explicit-any
              const cb = callback as any;
              if (all) cb(null, list);
              else cb(null, first.address, first.family);
            },
            (err) => callback(err, "", 4),
          );
        },
        ...(secure && isIP(tlsName) === 0 ? { servername: tlsName } : {}),
      };
      const request = (secure ? https : http).request(options, (response) => {
        const chunks: Uint8Array[] = [];
        let size = 0;
        response.on("data", (chunk: Uint8Array) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) {
            fail(`answer larger than ${MAX_RESPONSE_BYTES} bytes`);
            return;
          }
          chunks.push(chunk);
        });
        response.on("error", (err) => fail(err.message));
        response.on("end", () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          const headers = new Headers();
          for (const [name, value] of Object.entries(response.headers)) {
            if (value === undefined) continue;
            for (const v of Array.isArray(value) ? value : [value]) {
              headers.append(name, v);
            }
          }
          resolve({
            status: response.statusCode ?? 0,
            headers,
            body: new TextDecoder().decode(concat(chunks, size)),
          });
        });
      });
      const timer = setTimeout(
        () => fail(`no answer within ${req.timeoutMs} ms`),
        req.timeoutMs,
      );
      request.on("error", (err) => fail(err.message));
      request.end(body);
    });
  }

  /**
   * GETs a well-known document, following up to `maxRedirects` redirects to
   * other HTTPS URLs (the spec lets servers delegate that way).
   */
  async getFollowingRedirects(
    url: URL,
    timeoutMs: number,
    maxRedirects = 5,
  ): Promise<HomeserverResponse> {
    let current = url;
    for (let hop = 0;; hop++) {
      const response = await this.request({
        method: "GET",
        url: current,
        timeoutMs,
      });
      const location = response.headers.get("location");
      if (
        ![301, 302, 303, 307, 308].includes(response.status) ||
        location === null
      ) {
        return response;
      }
      if (hop >= maxRedirects) {
        throw new TransportError(
          `more than ${maxRedirects} redirects from ${url.host}`,
        );
      }
      const next = URL.canParse(location, current)
        ? new URL(location, current)
        : undefined;
      if (next?.protocol !== "https:") {
        throw new TransportError(
          `redirect from ${url.host} to a non-HTTPS URL`,
        );
      }
      current = next;
    }
  }

  /** Closes pooled connections. */
  close(): void {
    this.#httpsAgent.destroy();
    this.#httpAgent.destroy();
  }
}

async function addressesOf(
  resolver: Resolver,
  host: string,
): Promise<string[]> {
  if (isIP(host) !== 0) return [host];
  const addresses = await resolver.addresses(host);
  if (addresses.length === 0) throw new Error(`no address for ${host}`);
  return addresses;
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}
