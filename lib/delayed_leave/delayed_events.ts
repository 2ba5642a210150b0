/**
 * @module Restart and send of MSC4140 delayed events over the Client-Server API
 * (https://github.com/matrix-org/matrix-spec-proposals/pull/4140).
 */

import type { ClientDiscovery } from "../matrix/client_discovery.ts";
import type { HomeserverHttpClient } from "../matrix/http_client.ts";
import type { DelayedEventCall } from "./jobs.ts";
import { classifyAnswer } from "./retry.ts";
import { byStatus, type Metrics, untracked } from "../metrics.ts";

/** Time allowed for one restart or send call. */
export const DELAYED_EVENT_TIMEOUT_MS = 5_000;

const PATH = "/_matrix/client/unstable/org.matrix.msc4140/delayed_events";

/** Builds the call jobs make: one POST, classified into a retry class. */
export function delayedEventCall(
  deps: {
    client: HomeserverHttpClient;
    discovery: ClientDiscovery;
    now?: () => number;
    metrics?: Metrics;
  },
): DelayedEventCall {
  const now = deps.now ?? Date.now;
  const track = deps.metrics?.track ?? untracked;
  return async (action, record) => {
    const base = await deps.discovery.resolve(record.serverName);
    if (base === undefined) return { kind: "unresolvable" };
    // The delay ID is opaque to us; no access token is needed (MSC4140).
    const response = await track(
      action === "restart" ? "delayed_event_restart" : "delayed_event_send",
      () =>
        deps.client.request({
          method: "POST",
          url: new URL(
            `${base}${PATH}/${encodeURIComponent(record.delayId)}/${action}`,
          ),
          json: {},
          timeoutMs: DELAYED_EVENT_TIMEOUT_MS,
        }),
      byStatus,
    );
    return classifyAnswer(
      response.status,
      response.headers,
      response.body,
      now(),
    );
  };
}
