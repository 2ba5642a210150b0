/**
 * @module Delayed-leave scale: many concurrent jobs, each connected by a
 * signed `participant_joined` webhook and restarting its delayed event at
 * 80 % of its timeout against the bench homeserver; then the rate of signed
 * webhooks the service verifies.
 */

import { createHash } from "node:crypto";
import { signWebhook, webhookBody } from "../tests/_fakes/webhook.ts";
import type { BenchHomeserver, BenchSfu } from "./fakes.ts";
import { memoryOf, ProcessSampler } from "./proc.ts";
import type { Target } from "./service.ts";
import { runWrk, type WrkResult } from "./wrk.ts";

export interface DelayedLeaveOptions {
  jobs: number;
  /** delay_timeout of every job, in ms. */
  delayTimeoutMs: number;
  /** Seconds of idle restarting to sample. */
  windowSeconds: number;
  /** Seconds of webhook load. */
  webhookSeconds: number;
  webhookConnections: number;
  /** In-flight requests while creating jobs. */
  createConcurrency: number;
  apiKey: string;
  apiSecret: string;
  serverName: string;
  /** False for a --target that ran other load: per-job memory would mean nothing. */
  fresh: boolean;
}

export interface DelayedLeaveResult {
  jobs: number;
  delayTimeoutMs: number;
  /** Seconds to start every job and connect it by webhook. */
  setupSeconds: number;
  /** Jobs started and connected per second (delegate + webhook each). */
  setupJobsPerSec: number;
  connected: number;
  /** Leave events sent: jobs that were not kept alive (should be 0). */
  sent: number;
  rssBeforeMiB?: number;
  rssWithJobsMiB?: number;
  peakRssMiB?: number;
  /** RSS with the jobs: anonymous memory and file pages (the deno binary's code). */
  rssWithJobsAnonMiB?: number;
  rssWithJobsFileMiB?: number;
  /** (RSS with jobs − RSS before) / jobs, in KiB. */
  rssPerJobKiB?: number;
  heapUsedBeforeMiB?: number;
  heapUsedWithJobsMiB?: number;
  heapPerJobKiB?: number;
  /** V8 heap committed (used + free) with the jobs. */
  heapTotalWithJobsMiB?: number;
  /** Connections the service opened to the homeserver while idle-restarting. */
  hsConnectionsWhileRestarting?: number;
  /** CPU of the service while the jobs only restart, % of one core. */
  idleCpuPercent?: number;
  /** Restarts the homeserver received per second in that window. */
  restartsPerSec: number;
  webhooks: WrkResult;
}

/** `hash(list)` of SPEC 7, computed independently of the service. */
function hash(values: string[]): string {
  return createHash("sha256").update(JSON.stringify(values)).digest("base64")
    .replace(/=+$/, "");
}

/** A gauge of the service's /metrics in MiB (undefined when not served). */
async function gaugeMiB(
  url: string,
  name: string,
): Promise<number | undefined> {
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
    return m ? Number(m[1]) / 1024 / 1024 : undefined;
  } catch {
    return undefined;
  }
}

const heapUsedMiB = (url: string) =>
  gaugeMiB(url, "nodejs_heap_size_used_bytes");

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (x: number, digits = 1) =>
  Math.round(x * 10 ** digits) / 10 ** digits;

export async function runDelayedLeave(
  target: Target,
  hs: BenchHomeserver,
  _sfu: BenchSfu,
  options: DelayedLeaveOptions,
): Promise<DelayedLeaveResult> {
  const n = options.jobs;
  const server = options.serverName;
  const run = `dl${Date.now().toString(36)}`;
  const member = (i: number) => ({
    userId: `@u${run}.${i}:${server}`,
    // Rooms of eight participants.
    roomId: `!${run}.${Math.floor(i / 8)}:bench`,
  });

  // Sign every webhook before the service is measured.
  const keys = { apiKey: options.apiKey, apiSecret: options.apiSecret };
  const webhooks: { body: string; authorization: string }[] = [];
  for (let i = 0; i < n; i++) {
    const { userId, roomId } = member(i);
    const body = webhookBody(
      "participant_joined",
      hash([roomId, "m.call#"]),
      hash([userId, "DEVICE", "member"]),
    );
    webhooks.push({ body, authorization: await signWebhook(body, keys) });
  }
  const webhookFile = await Deno.makeTempFile({
    prefix: "lk-jwt-bench-webhooks-",
  });
  await Deno.writeTextFile(
    webhookFile,
    webhooks.map((w) => `${w.authorization}\t${w.body}`).join("\n") + "\n",
  );

  try {
    const result: Partial<DelayedLeaveResult> = {
      jobs: n,
      delayTimeoutMs: options.delayTimeoutMs,
    };
    if (target.pid !== undefined) {
      result.rssBeforeMiB = round(memoryOf(target.pid).rss);
    }
    result.heapUsedBeforeMiB = await heapUsedMiB(target.url);
    const sendsBefore = hs.sends;

    // Start each job and connect it at once, `createConcurrency` at a time.
    const started = performance.now();
    let next = 0;
    const failures: string[] = [];
    await Promise.all(
      Array.from({ length: options.createConcurrency }, async () => {
        while (next < n && failures.length < 5) {
          const i = next++;
          const { userId, roomId } = member(i);
          const delegate = await fetch(`${target.url}/delegate_delayed_leave`, {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({
              room_id: roomId,
              slot_id: "m.call#",
              openid_token: {
                access_token: `tok-${run}.${i}`,
                token_type: "Bearer",
                matrix_server_name: server,
                expires_in: 3600,
              },
              member: {
                id: "member",
                claimed_user_id: userId,
                claimed_device_id: "DEVICE",
              },
              delay_id: `${run}.${i}`,
              delay_timeout: options.delayTimeoutMs,
            }),
          });
          const text = await delegate.text();
          if (delegate.status !== 200) {
            failures.push(
              `delegate_delayed_leave answered ${delegate.status}: ${text}`,
            );
            continue;
          }
          const webhook = await fetch(`${target.url}/sfu_webhook`, {
            method: "POST",
            headers: {
              "Content-Type": "application/webhook+json",
              Authorization: webhooks[i]!.authorization,
            },
            body: webhooks[i]!.body,
          });
          await webhook.body?.cancel();
          if (webhook.status !== 200) {
            failures.push(`sfu_webhook answered ${webhook.status}`);
          }
        }
      }),
    );
    if (failures.length > 0) {
      throw new Error(
        `delayed-leave set-up failed ${failures.length} times, e.g. ${
          failures[0]
        }`,
      );
    }
    const connectedBy = Date.now() + 30_000 + options.delayTimeoutMs;
    const ours = () => {
      let count = 0;
      for (let i = 0; i < n; i++) if (hs.restarted.has(`${run}.${i}`)) count++;
      return count;
    };
    while (ours() < n && Date.now() < connectedBy) await sleep(20);
    const setupSeconds = (performance.now() - started) / 1000;
    result.setupSeconds = round(setupSeconds, 2);
    result.setupJobsPerSec = Math.round(n / setupSeconds);
    result.connected = ours();

    // Idle restarting: let one restart period pass, then sample.
    await sleep(options.delayTimeoutMs * 0.8);
    const sampler = target.pid === undefined
      ? undefined
      : new ProcessSampler(target.pid, 250);
    const restarts0 = hs.restarts;
    hs.resetConnections();
    const t0 = performance.now();
    await sleep(options.windowSeconds * 1000);
    result.hsConnectionsWhileRestarting = hs.counters.connections;
    result.restartsPerSec = Math.round(
      (hs.restarts - restarts0) / ((performance.now() - t0) / 1000),
    );
    if (sampler !== undefined && target.pid !== undefined) {
      const s = sampler.stop();
      result.idleCpuPercent = round(s.cpuPercent);
      const m = memoryOf(target.pid);
      result.rssWithJobsMiB = round(m.rss);
      result.rssWithJobsAnonMiB = round(m.anon);
      result.rssWithJobsFileMiB = round(m.file);
      // Only meaningful on a fresh service (not a --target that ran other load).
      if (options.fresh) {
        result.rssPerJobKiB = round(
          ((result.rssWithJobsMiB - (result.rssBeforeMiB ?? 0)) * 1024) / n,
          2,
        );
      }
    }
    result.heapUsedWithJobsMiB = await heapUsedMiB(target.url);
    const heapTotal = await gaugeMiB(
      target.url,
      "nodejs_heap_size_total_bytes",
    );
    if (heapTotal !== undefined) result.heapTotalWithJobsMiB = round(heapTotal);
    if (
      options.fresh && result.heapUsedBeforeMiB !== undefined &&
      result.heapUsedWithJobsMiB !== undefined
    ) {
      result.heapPerJobKiB = round(
        ((result.heapUsedWithJobsMiB - result.heapUsedBeforeMiB) * 1024) / n,
        2,
      );
      result.heapUsedBeforeMiB = round(result.heapUsedBeforeMiB);
      result.heapUsedWithJobsMiB = round(result.heapUsedWithJobsMiB);
    }

    // Webhook handling rate: participant_joined for the connected jobs.
    result.webhooks = await runWrk({
      url: target.url,
      script: "webhook.lua",
      scriptArgs: [webhookFile],
      connections: options.webhookConnections,
      seconds: options.webhookSeconds,
    });
    if (target.pid !== undefined) {
      result.peakRssMiB = round(memoryOf(target.pid).hwm);
    }
    result.sent = hs.sends - sendsBefore;
    return result as DelayedLeaveResult;
  } finally {
    await Deno.remove(webhookFile).catch(() => {});
  }
}
