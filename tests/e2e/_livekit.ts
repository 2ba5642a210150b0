/**
 * @module A real LiveKit SFU (livekit-server built by scripts/install/e2e-livekit.sh)
 * on loopback for the end-to-end suite: rooms are never created by a join
 * (`room.auto_create: false`), the API key is ours and the webhooks go to the
 * services under test.
 *
 * Timing that decides the delayed-leave scenarios: a participant whose client
 * dies without a goodbye stays until its peer connection is given up, and no
 * configuration key of LiveKit 1.13.5 changes that. The signalling socket
 * closing does not remove a participant that has connected (it may resume).
 * ICE goes `disconnected` after 10 s without a packet and `failed` 5 s later
 * (pkg/rtc/transport.go: iceDisconnectedTimeout, iceFailedTimeout); the
 * participant is then closed after another 5 s (pkg/rtc/participant.go:
 * disconnectCleanupDuration) with PEER_CONNECTION_DISCONNECTED, and
 * `participant_left` is posted with `disconnectReason` CONNECTION_TIMEOUT.
 * Measured here: 20.5 to 21 s from SIGKILL to the webhook.
 *
 * Every ICE packet stays on this machine: the SFU offers only 127.0.0.1
 * candidates and, being ICE-lite, never probes the client's candidates (which
 * libwebrtc takes from this machine's own interfaces); clients get a STUN
 * server on 127.0.0.1 where nothing answers instead of LiveKit's public
 * defaults.
 *
 * Webhooks go to every service port the suite may use; until a service
 * listens there, LiveKit logs "failed to send webhook" for it and moves on.
 */

import { RoomServiceClient } from "livekit-server-sdk";
import { Child } from "./_process.ts";
import { freePorts, poll, PollAbort } from "./_tools.ts";

/** How long the SFU keeps a participant whose client vanished: 10 + 5 + 5 s (see the module comment). */
export const SFU_PEER_TIMEOUT_MS = 20_000;

export interface LiveKitOptions {
  binary: string;
  dir: string;
  apiKey: string;
  apiSecret: string;
  /** Where `participant_joined` / `participant_left` are posted. */
  webhookUrls: string[];
}

/** One running SFU. */
export class LiveKit {
  /** The signalling URL clients and the service use (`LIVEKIT_URL`). */
  readonly url: string;
  /** The same port over HTTP, for Twirp. */
  readonly httpUrl: string;
  readonly rooms: RoomServiceClient;
  readonly child: Child;

  private constructor(port: number, child: Child, key: string, secret: string) {
    this.url = `ws://127.0.0.1:${port}`;
    this.httpUrl = `http://127.0.0.1:${port}`;
    this.rooms = new RoomServiceClient(this.httpUrl, key, secret);
    this.child = child;
  }

  static async start(options: LiveKitOptions): Promise<LiveKit> {
    const [port, rtcTcpPort, rtcUdpPort, stunPort] = freePorts(4) as [
      number,
      number,
      number,
      number,
    ];
    const config = {
      port,
      bind_addresses: ["127.0.0.1"],
      rtc: {
        tcp_port: rtcTcpPort,
        udp_port: rtcUdpPort,
        use_external_ip: false,
        node_ip: "127.0.0.1",
        // Only loopback candidates: every ICE packet stays on 127.0.0.1.
        enable_loopback_candidate: true,
        interfaces: { includes: ["lo"] },
        ips: { includes: ["127.0.0.1/32"] },
        // ICE-lite: the SFU answers checks and never sends any, so it never
        // probes the client's other host candidates.
        use_ice_lite: true,
        // Without a STUN server of its own, LiveKit hands clients public ones;
        // a loopback address where nothing answers keeps them local.
        stun_servers: [`127.0.0.1:${stunPort}`],
      },
      turn: { enabled: false },
      keys: { [options.apiKey]: options.apiSecret },
      webhook: { api_key: options.apiKey, urls: options.webhookUrls },
      room: { auto_create: false },
      logging: { level: "info", json: false },
    };
    const configFile = `${options.dir}/livekit.yaml`;
    // JSON is YAML: livekit-server reads it as its configuration file.
    await Deno.writeTextFile(configFile, JSON.stringify(config, null, 2));
    const child = new Child("livekit-server", options.binary, {
      args: ["--config", configFile],
      cwd: options.dir,
      logFile: `${options.dir}/livekit.log`,
    });
    const sfu = new LiveKit(port, child, options.apiKey, options.apiSecret);
    try {
      await poll(
        "livekit-server to answer",
        async () => {
          if (child.exited) throw new PollAbort("livekit-server exited");
          const response = await fetch(`${sfu.httpUrl}/`);
          await response.body?.cancel();
          return response.ok ? true : undefined;
        },
        30_000,
        100,
      );
    } catch (err) {
      await child.stop();
      throw new Error(
        `${err instanceof Error ? err.message : err}\n${child.tail()}`,
      );
    }
    return sfu;
  }

  stop(): Promise<Deno.CommandStatus> {
    return this.child.stop();
  }
}
