/** @module A fake DNS server over UDP on 127.0.0.1 answering SRV, A and AAAA from maps. */

import { createSocket } from "node:dgram";
import type { Buffer } from "node:buffer";
// @ts-types="@types/dns-packet"
import dnsPacket from "dns-packet";

/** One SRV record; priority defaults to 10 and weight to 0. */
export interface SrvRecord {
  target: string;
  port: number;
  priority?: number;
  weight?: number;
}

/**
 * The fake DNS server. Map keys are names without the trailing dot and are
 * matched case-insensitively. A name in no map answers NXDOMAIN; a name in
 * some map but not the asked type's answers NOERROR with no records.
 */
export interface FakeDns {
  port: number;
  /** `127.0.0.1:<port>` */
  nameServer: string;
  /** Records for names like `_matrix-fed._tcp.example.com`. */
  srv: Map<string, SrvRecord[]>;
  a: Map<string, string[]>;
  aaaa: Map<string, string[]>;
  /** Every question asked, in order; `name` as sent, `type` like `"SRV"`. */
  queries: { name: string; type: string }[];
  close(): Promise<void>;
}

const TTL = 60;
const NXDOMAIN = 3;

/** Canonical form for matching: lower case, no trailing dot. */
function canonical(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

/** Looks `name` up in a map whose keys may be written in any case. */
function lookup<T>(map: Map<string, T>, name: string): T | undefined {
  for (const [key, value] of map) {
    if (canonical(key) === name) return value;
  }
  return undefined;
}

/** Starts a fake DNS server on a free UDP port of 127.0.0.1. */
export async function startFakeDns(): Promise<FakeDns> {
  const socket = createSocket("udp4");
  const srv = new Map<string, SrvRecord[]>();
  const a = new Map<string, string[]>();
  const aaaa = new Map<string, string[]>();
  const queries: { name: string; type: string }[] = [];

  function answer(query: dnsPacket.DecodedPacket): Buffer {
    const question = query.questions?.[0];
    const answers: dnsPacket.Answer[] = [];
    let rcode = 0;
    if (question) {
      queries.push({ name: question.name, type: question.type });
      const name = canonical(question.name);
      const srvs = lookup(srv, name);
      const as = lookup(a, name);
      const aaaas = lookup(aaaa, name);
      if (!srvs && !as && !aaaas) rcode = NXDOMAIN;
      if (question.type === "SRV") {
        for (const r of srvs ?? []) {
          answers.push({
            type: "SRV",
            name: question.name,
            ttl: TTL,
            data: {
              target: r.target,
              port: r.port,
              priority: r.priority ?? 10,
              weight: r.weight ?? 0,
            },
          });
        }
      } else if (question.type === "A" || question.type === "AAAA") {
        const type = question.type;
        for (const ip of (type === "A" ? as : aaaas) ?? []) {
          answers.push({ type, name: question.name, ttl: TTL, data: ip });
        }
      }
    }
    return dnsPacket.encode({
      type: "response",
      id: query.id ?? 0,
      // The low four bits of the flags word are the RCODE (RFC 1035 4.1.1).
      flags: dnsPacket.AUTHORITATIVE_ANSWER |
        ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | rcode,
      questions: query.questions ?? [],
      answers,
    });
  }

  socket.on("message", (msg, rinfo) => {
    let query: dnsPacket.DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return; // not DNS: drop it, as a real server would
    }
    socket.send(answer(query), rinfo.port, rinfo.address);
  });

  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(0, "127.0.0.1", () => {
      socket.off("error", reject);
      resolve();
    });
  });
  const port = socket.address().port;

  let closing: Promise<void> | undefined;
  return {
    port,
    nameServer: `127.0.0.1:${port}`,
    srv,
    a,
    aaaa,
    queries,
    close() {
      closing ??= new Promise<void>((resolve) => socket.close(() => resolve()));
      return closing;
    },
  };
}
