/**
 * @module The client's IP address: the peer's, or, when the peer is a
 * trusted proxy, the last untrusted address of `X-Forwarded-For`.
 */

import { isIP } from "node:net";

/** An address range: the bits of its network part. */
export interface Cidr {
  family: 4 | 6;
  bits: bigint;
  prefix: number;
}

/** Parses `ip` or `ip/prefix`; undefined when it is neither. */
export function parseCidr(text: string): Cidr | undefined {
  const [ip = "", prefixText] = text.split("/");
  const family = isIP(ip);
  if (family !== 4 && family !== 6) return undefined;
  const width = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? width : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > width) {
    return undefined;
  }
  return { family, bits: ipBits(ip, family) >> BigInt(width - prefix), prefix };
}

/** Whether `ip` falls in `range`. IPv4-mapped IPv6 addresses count as IPv4. */
export function inCidr(ip: string, range: Cidr): boolean {
  const plain = ip.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, "$1");
  const family = isIP(plain);
  if (family !== range.family) return false;
  const width = family === 4 ? 32 : 128;
  return (ipBits(plain, family) >> BigInt(width - range.prefix)) === range.bits;
}

function ipBits(ip: string, family: 4 | 6): bigint {
  if (family === 4) {
    return ip.split(".").reduce(
      (acc, part) => (acc << 8n) | BigInt(Number(part)),
      0n,
    );
  }
  let text = ip.replace(/%.*$/, "");
  // An embedded IPv4 tail becomes two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = ipBits(v4[1]!, 4);
    text = text.slice(0, v4.index) +
      `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === undefined || tail === "" ? [] : tail.split(":");
  const zeros = Array(8 - headGroups.length - tailGroups.length).fill("0");
  const groups = tail === undefined
    ? headGroups
    : [...headGroups, ...zeros, ...tailGroups];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** Finds client addresses behind the configured proxies. */
export class ClientIpResolver {
  readonly #trusted: Cidr[];

  constructor(trustedProxies: readonly string[]) {
    this.#trusted = trustedProxies.map((p) => parseCidr(p)!);
  }

  #isTrusted(ip: string): boolean {
    return this.#trusted.some((range) => inCidr(ip, range));
  }

  /**
   * The client of a request from `peer`: `X-Forwarded-For` is read right to
   * left only while each hop is a trusted proxy, so a client cannot forge it.
   */
  resolve(peer: string, forwardedFor: string | null): string {
    if (forwardedFor === null || !this.#isTrusted(peer)) return peer;
    const hops = forwardedFor.split(",").map((h) => h.trim()).filter((h) =>
      h !== ""
    );
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!;
      if (isIP(hop) === 0) return peer;
      if (!this.#isTrusted(hop)) return hop;
    }
    return hops[0] ?? peer;
  }
}
