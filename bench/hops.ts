/**
 * @module The cost of each outgoing hop on its own, with the service's own
 * code: JWT signing (in-process), the userinfo round trip (the service's
 * node:https client) and the Twirp round trip (RoomService over fetch).
 * Run as a child process of bench/main.ts, which hosts the fakes, so the
 * client and the servers do not share a JavaScript thread.
 *
 * Usage: deno run -A bench/hops.ts '<HopsConfig as JSON>'  (prints JSON)
 */

import { Buffer } from "node:buffer";
import { createHash, createHmac } from "node:crypto";
import http from "node:http";
import process from "node:process";

type RoomServiceModule = typeof import("../lib/livekit/room_service.ts");
type TokenModule = typeof import("../lib/livekit/token.ts");
type HttpClientModule = typeof import("../lib/matrix/http_client.ts");

export interface HopsConfig {
  /** `127.0.0.1:<port>` of the bench homeserver. */
  serverName: string;
  /** LIVEKIT_URL of the bench SFU. */
  sfuUrl: string;
  caFile: string;
  apiKey: string;
  apiSecret: string;
  /** Seconds per measurement. */
  seconds: number;
  /** In-flight calls for the throughput figures. */
  concurrency: number;
  /** The checkout whose lib/ is measured (file URL ending in /); this one by default. */
  root?: string;
}

/** Throughput and latency of one operation. */
export interface OpFigures {
  ops: number;
  opsPerSec: number;
  /** CPU time of this process (every thread) per operation, in µs. */
  cpuUsPerOp: number;
  /** Latencies in milliseconds (sequential runs only). */
  p50?: number;
  p99?: number;
}

export interface HopsResult {
  sign: OpFigures;
  /** One HMAC over a hand-built header and claims: the floor under `sign`. */
  signBareHmac: OpFigures;
  /** The same token with node:crypto's createHmac, synchronously. */
  signNodeHmac: OpFigures;
  hashes: OpFigures;
  /** The same two hashes with node:crypto's createHash. */
  hashesNode: OpFigures;
  userinfo: OpFigures;
  userinfoConcurrent: OpFigures;
  userinfoFetch: OpFigures;
  userinfoFetchConcurrent: OpFigures;
  twirp: OpFigures;
  twirpConcurrent: OpFigures;
  /** A canned CreateRoom over fetch (transport only), at `concurrency`. */
  twirpFetch: OpFigures;
  /** The same over node:http with a keep-alive agent. */
  twirpNodeHttp: OpFigures;
}

/** Runs `op` for `seconds` with `concurrency` loops; latencies when sequential. */
async function measure(
  op: (i: number) => unknown,
  seconds: number,
  concurrency = 1,
): Promise<OpFigures> {
  // Warm-up: JIT, pooled connections.
  const warm = Math.max(20, concurrency * 4);
  for (let i = 0; i < warm; i += concurrency) {
    await Promise.all(
      Array.from({ length: concurrency }, (_, j) => op(-1 - i - j)),
    );
  }
  const latencies: number[] = [];
  let n = 0;
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const until = started + seconds * 1000;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < until) {
      const t = performance.now();
      await op(n++);
      if (concurrency === 1) latencies.push(performance.now() - t);
    }
  }));
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const figures: OpFigures = {
    ops: n,
    opsPerSec: Math.round(n / elapsed),
    cpuUsPerOp: Math.round((cpu.user + cpu.system) / n * 10) / 10,
  };
  if (latencies.length > 0) {
    latencies.sort((a, b) => a - b);
    const at = (q: number) =>
      Math.round(
        latencies[
          Math.min(latencies.length - 1, Math.floor(q * latencies.length))
        ]! * 1000,
      ) / 1000;
    figures.p50 = at(0.5);
    figures.p99 = at(0.99);
  }
  return figures;
}

function base64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/=+$/, "").replaceAll("+", "-").replaceAll("/", "_");
}

export async function runHops(config: HopsConfig): Promise<HopsResult> {
  const seconds = config.seconds;
  const root = config.root ?? new URL("../", import.meta.url).href;
  const { participantIdentity, roomName, TokenSigner }: TokenModule =
    await import(`${root}lib/livekit/token.ts`);
  const { HomeserverHttpClient }: HttpClientModule = await import(
    `${root}lib/matrix/http_client.ts`
  );
  const { RoomService }: RoomServiceModule = await import(
    `${root}lib/livekit/room_service.ts`
  );
  const signer = new TokenSigner(config.apiKey, config.apiSecret);
  const sign = await measure(
    (i) => signer.participantToken(`identity-${i}`, "room"),
    seconds,
  );

  // The floor: one HMAC over a header and claims built by hand.
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(config.apiSecret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const header = base64url(encoder.encode('{"alg":"HS256","typ":"JWT"}'));
  // The claims TokenSigner signs, built by hand for the two floors below.
  const claimsJson = (i: number) => {
    const now = Math.floor(Date.now() / 1000);
    return JSON.stringify({
      video: {
        room: "room",
        roomJoin: true,
        canPublish: true,
        canSubscribe: true,
        canUpdateOwnMetadata: true,
      },
      iss: config.apiKey,
      nbf: now,
      exp: now + 3600,
      sub: `identity-${i}`,
    });
  };
  const signBareHmac = await measure(async (i) => {
    const claims = base64url(encoder.encode(claimsJson(i)));
    const input = `${header}.${claims}`;
    const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(input));
    return `${input}.${base64url(new Uint8Array(mac))}`;
  }, seconds);

  // The same with node:crypto, which works synchronously (no async op per call).
  const nodeHeader = Buffer.from('{"alg":"HS256","typ":"JWT"}').toString(
    "base64url",
  );
  const signNodeHmac = await measure((i) => {
    const claims = Buffer.from(claimsJson(i)).toString("base64url");
    const input = `${nodeHeader}.${claims}`;
    const mac = createHmac("sha256", config.apiSecret).update(input).digest(
      "base64url",
    );
    return Promise.resolve(`${input}.${mac}`);
  }, seconds);
  const nodeHash = (values: string[]) =>
    createHash("sha256").update(JSON.stringify(values)).digest("base64")
      .replace(/=+$/, "");
  const hashesNode = await measure(
    (i) =>
      Promise.resolve([
        nodeHash([`!room${i}:bench`, "m.call#"]),
        nodeHash([`@u${i}:bench`, "DEVICE", "member"]),
      ]),
    seconds,
  );

  const hashes = await measure(
    (i) =>
      Promise.all([
        roomName(`!room${i}:bench`, "m.call#"),
        participantIdentity(`@u${i}:bench`, "DEVICE", "member"),
      ]),
    seconds,
  );

  const caPem = await Deno.readTextFile(config.caFile);
  const client = new HomeserverHttpClient({
    resolver: {
      srv: () => Promise.resolve([]),
      addresses: () => Promise.reject(new Error("no DNS in the bench")),
    },
    skipVerifyTls: false,
    caCerts: caPem,
  });
  const userinfoUrl = (i: number) =>
    new URL(
      `https://${config.serverName}/_matrix/federation/v1/openid/userinfo?access_token=tok-hop.${i}`,
    );
  const userinfoCall = async (i: number) => {
    const r = await client.request({
      method: "GET",
      url: userinfoUrl(i),
      timeoutMs: 10_000,
    });
    if (r.status !== 200) throw new Error(`userinfo answered ${r.status}`);
    JSON.parse(r.body);
  };
  const userinfo = await measure(userinfoCall, seconds);
  const userinfoConcurrent = await measure(
    userinfoCall,
    seconds,
    config.concurrency,
  );
  client.close();

  // For comparison: the same call with fetch and a client trusting the CA.
  const httpClient = Deno.createHttpClient({ caCerts: [caPem] });
  const fetchCall = async (i: number) => {
    const r = await fetch(userinfoUrl(i), { client: httpClient });
    if (r.status !== 200) throw new Error(`userinfo answered ${r.status}`);
    await r.json();
  };
  const userinfoFetch = await measure(fetchCall, seconds);
  const userinfoFetchConcurrent = await measure(
    fetchCall,
    seconds,
    config.concurrency,
  );
  httpClient.close();

  const rooms = new RoomService({ livekitUrl: config.sfuUrl, signer });
  const twirpCall = (i: number) => rooms.createRoom(`room-${i}`);
  const twirp = await measure(twirpCall, seconds);
  const twirpConcurrent = await measure(twirpCall, seconds, config.concurrency);

  // Transport only, for comparison: a canned CreateRoom with fetch and with
  // node:http over a keep-alive agent.
  const token = await signer.sign("", { roomCreate: true }, 600);
  const twirpUrl = `${
    config.sfuUrl.replace(/^ws/, "http")
  }/twirp/livekit.RoomService/CreateRoom`;
  const twirpBody = new Uint8Array([10, 4, 114, 111, 111, 109, 16, 172, 2]);
  const twirpHeaders = {
    "Content-Type": "application/protobuf",
    Authorization: `Bearer ${token}`,
  };
  const twirpFetch = await measure(
    async () => {
      const r = await fetch(twirpUrl, {
        method: "POST",
        headers: twirpHeaders,
        body: twirpBody,
      });
      await r.arrayBuffer();
    },
    seconds,
    config.concurrency,
  );
  const agent = new http.Agent({
    keepAlive: true,
    maxSockets: 64,
    maxFreeSockets: 64,
  });
  const twirpNodeHttp = await measure(
    () =>
      new Promise<void>((resolve, reject) => {
        const req = http.request(twirpUrl, {
          method: "POST",
          agent,
          headers: {
            ...twirpHeaders,
            "Content-Length": String(twirpBody.length),
          },
        }, (res) => {
          res.on("data", () => {});
          res.on("end", () => resolve());
          res.on("error", reject);
        });
        req.on("error", reject);
        req.end(twirpBody);
      }),
    seconds,
    config.concurrency,
  );
  agent.destroy();

  return {
    twirpFetch,
    twirpNodeHttp,
    sign,
    signBareHmac,
    signNodeHmac,
    hashes,
    hashesNode,
    userinfo,
    userinfoConcurrent,
    userinfoFetch,
    userinfoFetchConcurrent,
    twirp,
    twirpConcurrent,
  };
}

if (import.meta.main) {
  const config: HopsConfig = JSON.parse(Deno.args[0] ?? "{}");
  console.log(JSON.stringify(await runHops(config)));
}
