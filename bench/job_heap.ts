/**
 * @module The heap one delayed-leave job holds, measured in-process after a
 * full garbage collection: the service's own JobManager with the memory
 * store, a homeserver that answers at once and an SFU that never has the
 * participant. Run as a child process of bench/main.ts (it needs
 * `--expose-gc`); prints JSON.
 *
 * Usage: deno run -A --v8-flags=--expose-gc bench/job_heap.ts '<JobHeapConfig as JSON>'
 */

import { getLogger } from "@logtape/logtape";

type JobsModule = typeof import("../lib/delayed_leave/jobs.ts");
type StoreModule = typeof import("../lib/delayed_leave/store.ts");

export interface JobHeapConfig {
  jobs: number;
  /** The checkout whose lib/ is measured (file URL ending in /); this one by default. */
  root?: string;
}

export interface JobHeapResult {
  jobs: number;
  /** Bytes of heap per job in Waiting (waiting timer and presence look-up backoff). */
  waitingBytes: number;
  /** Bytes of heap per job in Connected (restart loop between restarts). */
  connectedBytes: number;
}

const gc = (globalThis as { gc?: () => void }).gc;

function heapAfterGc(): number {
  gc!();
  gc!();
  return Deno.memoryUsage().heapUsed;
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function measureJobHeap(
  config: JobHeapConfig,
): Promise<JobHeapResult> {
  if (gc === undefined) throw new Error("run with --v8-flags=--expose-gc");
  const root = config.root ?? new URL("../", import.meta.url).href;
  const { JobManager }: JobsModule = await import(
    `${root}lib/delayed_leave/jobs.ts`
  );
  const { MemoryJobStore }: StoreModule = await import(
    `${root}lib/delayed_leave/store.ts`
  );
  const n = config.jobs;
  const manager = new JobManager({
    store: new MemoryJobStore(),
    delayedEvent: () => Promise.resolve({ kind: "ok" }),
    getParticipant: () => Promise.resolve("absent"),
    sanityIntervalMs: 0,
    log: getLogger(["bench"]),
    maxJobs: Infinity,
  });
  // As a request would carry them: a room hash, a member identity, a delay ID.
  const member = (i: number) => ({
    room: `${i.toString(36).padStart(8, "0")}${"r".repeat(35)}`,
    identity: `@user${i}:matrix.example.org:DEVICE${i}`,
  });
  await settle(50);
  const before = heapAfterGc();
  for (let i = 0; i < n; i++) {
    await manager.start({
      ...member(i),
      delayId: `syd_${i.toString(36)}abcdefghijklmnop`,
      delayTimeoutMs: 60_000,
      serverName: "matrix.example.org",
    });
  }
  await settle(100);
  const waiting = heapAfterGc();
  for (let i = 0; i < n; i++) {
    const { room, identity } = member(i);
    manager.signal(room, identity, "participantConnected");
  }
  await settle(100);
  const connected = heapAfterGc();
  const states = manager.countByState();
  manager.shutdown();
  if (states.Connected !== n) {
    throw new Error(`${states.Connected} of ${n} jobs connected`);
  }
  return {
    jobs: n,
    waitingBytes: Math.round((waiting - before) / n),
    connectedBytes: Math.round((connected - before) / n),
  };
}

if (import.meta.main) {
  const config: JobHeapConfig = JSON.parse(Deno.args[0] ?? "{}");
  console.log(JSON.stringify(await measureJobHeap(config)));
}
