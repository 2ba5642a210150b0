/** @module LiveKit RoomService over Twirp with binary protobuf (SPEC section 10). */

import {
  CreateRoomRequest,
  ParticipantInfo,
  Room,
  RoomParticipantIdentity,
} from "@livekit/protocol";
import type { TokenSigner, VideoGrant } from "./token.ts";
import { type Metrics, type Track, untracked } from "../metrics.ts";

/** How long a room lives with nobody in it, in seconds. */
export const EMPTY_TIMEOUT_SECONDS = 300;
/** How long a room lives after the last participant left, in seconds. */
export const DEPARTURE_TIMEOUT_SECONDS = 20;
/** Time allowed for one Twirp call. */
export const TWIRP_TIMEOUT_MS = 5_000;

/** A Twirp call that did not succeed; `code` is Twirp's error code when the SFU sent one. */
export class TwirpError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "TwirpError";
    this.status = status;
    this.code = code;
  }
}

/** What `GetParticipant` learnt about a participant. */
export type Presence = "present" | "absent";

export interface RoomServiceOptions {
  /** `LIVEKIT_URL`; ws(s) is mapped to http(s). */
  livekitUrl: string;
  signer: TokenSigner;
  fetch?: typeof fetch;
  timeoutMs?: number;
  metrics?: Metrics;
}

/** The Twirp endpoint base of an SFU URL: `wss://sfu` becomes `https://sfu/twirp`. */
export function twirpBaseUrl(livekitUrl: string): string {
  const url = new URL(livekitUrl);
  url.protocol = url.protocol === "wss:"
    ? "https:"
    : url.protocol === "ws:"
    ? "http:"
    : url.protocol;
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}/twirp`;
}

/** A client of the SFU's RoomService. */
export class RoomService {
  readonly #base: string;
  readonly #signer: TokenSigner;
  readonly #fetch: typeof fetch;
  readonly #timeoutMs: number;
  readonly #track: Track;

  constructor(options: RoomServiceOptions) {
    this.#base = twirpBaseUrl(options.livekitUrl);
    this.#signer = options.signer;
    this.#fetch = options.fetch ?? fetch;
    this.#timeoutMs = options.timeoutMs ?? TWIRP_TIMEOUT_MS;
    this.#track = options.metrics?.track ?? untracked;
  }

  /**
   * Creates the room with our timeouts; creating an existing room is not an
   * error in LiveKit, so the answer tells whether it was new.
   */
  async createRoom(name: string): Promise<{ created: boolean; sid: string }> {
    const request = new CreateRoomRequest({
      name,
      emptyTimeout: EMPTY_TIMEOUT_SECONDS,
      departureTimeout: DEPARTURE_TIMEOUT_SECONDS,
      maxParticipants: 0,
    });
    const started = Date.now();
    const body = await this.#call("CreateRoom", request.toBinary(), {
      roomCreate: true,
    });
    const room = Room.fromBinary(body);
    // LiveKit answers an existing room as it is; a fresh one was created by this call.
    return {
      created: Number(room.creationTime) * 1000 >= started - 1000 ||
        room.creationTime === 0n,
      sid: room.sid,
    };
  }

  /** Asks whether `identity` is in `room`; throws {@link TwirpError} when the SFU cannot say. */
  async getParticipant(room: string, identity: string): Promise<Presence> {
    const request = new RoomParticipantIdentity({ room, identity });
    try {
      const body = await this.#call("GetParticipant", request.toBinary(), {
        room,
        roomAdmin: true,
      });
      ParticipantInfo.fromBinary(body);
      return "present";
    } catch (err) {
      if (err instanceof TwirpError && err.code === "not_found") {
        return "absent";
      }
      throw err;
    }
  }

  async #call(
    method: "CreateRoom" | "GetParticipant",
    body: Uint8Array,
    grant: VideoGrant,
  ): Promise<Uint8Array> {
    return await this.#track(
      method === "CreateRoom" ? "twirp_create_room" : "twirp_get_participant",
      () => this.#send(method, body, grant),
      () => "ok",
      (err) =>
        !(err instanceof TwirpError) || err.status === 0
          ? "transport_error"
          // not_found is GetParticipant's normal "absent".
          : err.code === "not_found"
          ? "ok"
          : "http_error",
    );
  }

  async #send(
    method: string,
    body: Uint8Array,
    grant: VideoGrant,
  ): Promise<Uint8Array> {
    // A short-lived token per call: the grants differ per room and method.
    const token = await this.#signer.sign("", grant, 60);
    let response: Response;
    let bytes: Uint8Array;
    // A timer cleared with the answer: AbortSignal.timeout() would leave one
    // pending per call for the whole timeout, which costs dearly under load.
    const abort = new AbortController();
    const timer = setTimeout(
      () => abort.abort(new DOMException("timed out", "TimeoutError")),
      this.#timeoutMs,
    );
    try {
      response = await this.#fetch(
        `${this.#base}/livekit.RoomService/${method}`,
        {
          method: "POST",
          headers: {
            "Content-Type": "application/protobuf",
            Authorization: `Bearer ${token}`,
          },
          body: body as Uint8Array<ArrayBuffer>,
          signal: abort.signal,
        },
      );
      bytes = new Uint8Array(await response.arrayBuffer());
    } catch (err) {
      throw new TwirpError(
        0,
        "unavailable",
        `${method}: ${err instanceof Error ? err.message : String(err)}`,
      );
    } finally {
      clearTimeout(timer);
    }
    if (response.ok) return bytes;
    let code = "unknown";
    let msg = `HTTP ${response.status}`;
    try {
      const error = JSON.parse(new TextDecoder().decode(bytes));
      if (typeof error?.code === "string") code = error.code;
      if (typeof error?.msg === "string") msg = error.msg;
    } catch {
      // Not a Twirp error body: keep the status.
    }
    throw new TwirpError(response.status, code, `${method}: ${code}: ${msg}`);
  }
}
