/** @module DNS look-ups behind an interface, so tests and operators can choose the resolver. */

import { lookup } from "node:dns/promises";

/** One SRV answer. */
export interface SrvRecord {
  target: string;
  port: number;
  priority: number;
  weight: number;
}

/** The DNS questions server discovery asks. */
export interface Resolver {
  /** SRV records of `name`; empty when there are none. */
  srv(name: string): Promise<SrvRecord[]>;
  /** IP addresses of a host name; throws when it has none. */
  addresses(host: string): Promise<string[]>;
}

/** The system's resolver: SRV through Deno's DNS client, addresses through getaddrinfo (so /etc/hosts applies). */
export function systemResolver(): Resolver {
  return {
    srv: (name) => resolveSrv(name, undefined),
    async addresses(host) {
      const found = await lookup(host, { all: true });
      return found.map((a) => a.address);
    },
  };
}

/** A resolver that asks one DNS server for everything (`LIVEKIT_DNS_SERVER`). */
export function nameServerResolver(
  nameServer: { ipAddr: string; port: number },
): Resolver {
  return {
    srv: (name) => resolveSrv(name, nameServer),
    async addresses(host) {
      const [v4, v6] = await Promise.all([
        resolveOrEmpty(() => Deno.resolveDns(host, "A", { nameServer })),
        resolveOrEmpty(() => Deno.resolveDns(host, "AAAA", { nameServer })),
      ]);
      const all = [...v4, ...v6];
      if (all.length === 0) throw new Error(`no address for ${host}`);
      return all;
    },
  };
}

async function resolveSrv(
  name: string,
  nameServer: { ipAddr: string; port: number } | undefined,
): Promise<SrvRecord[]> {
  const records = await resolveOrEmpty(() =>
    Deno.resolveDns(name, "SRV", nameServer ? { nameServer } : {})
  );
  return records.map((r) => ({
    target: r.target.replace(/\.$/, ""),
    port: r.port,
    priority: r.priority,
    weight: r.weight,
  }));
}

/** "No such name" and "no records" are both an empty answer; other failures propagate. */
async function resolveOrEmpty<T>(query: () => Promise<T[]>): Promise<T[]> {
  try {
    return await query();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
}

/**
 * Orders SRV answers per RFC 2782: lowest priority first, and within a
 * priority a weighted random pick. A lone "." target means "no service".
 */
export function orderSrv(
  records: readonly SrvRecord[],
  random: () => number = Math.random,
): SrvRecord[] {
  const usable = records.filter((r) => r.target !== "" && r.target !== ".");
  const priorities = [...new Set(usable.map((r) => r.priority))].sort((a, b) =>
    a - b
  );
  const ordered: SrvRecord[] = [];
  for (const priority of priorities) {
    const group = usable.filter((r) => r.priority === priority);
    while (group.length > 0) {
      const total = group.reduce((sum, r) => sum + r.weight, 0);
      let pick = random() * total;
      let index = group.findIndex((r) => (pick -= r.weight) < 0);
      if (index < 0) index = 0;
      ordered.push(...group.splice(index, 1));
    }
  }
  return ordered;
}
