/** @module The SFU's webhooks (SPEC section 6), verified and turned into job signals. */

import { WebhookEvent } from "@livekit/protocol";
import { createHash } from "node:crypto";
import { jwtVerify } from "jose";
import { MatrixError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { JobSignal } from "../delayed_leave/machine.ts";

/** `DisconnectReason.CLIENT_INITIATED` in LiveKit's protocol. */
const CLIENT_INITIATED = 1;

export interface WebhookOptions {
  apiKey: string;
  apiSecret: string;
  signal(room: string, identity: string, signal: JobSignal): void;
  log: Logger;
}

/** Verifies webhooks with the API secret and forwards participant events. */
export class WebhookHandler {
  /** The secret as a key, imported once (livekit-server-sdk re-imports it per webhook). */
  readonly #key: Promise<CryptoKey>;
  readonly #options: WebhookOptions;

  constructor(options: WebhookOptions) {
    this.#options = options;
    this.#key = crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode(options.apiSecret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["verify"],
    );
  }

  /** Throws 401 for a bad signature or body hash, 400 for a body that is not an event. */
  async handle(body: string, authorization: string | null): Promise<void> {
    const token = authorization?.replace(/^Bearer\s+/i, "") ?? "";
    let claims;
    try {
      // Checks the HS256 signature, expiry and that the issuer is our API key.
      // What livekit-server-sdk's TokenVerifier checks, with the key imported once.
      ({ payload: claims } = await jwtVerify(token, await this.#key, {
        algorithms: ["HS256"],
        issuer: this.#options.apiKey,
        clockTolerance: 10,
        requiredClaims: ["exp"],
      }));
    } catch (err) {
      this.#options.log.warn("Refused webhook: {reason}", {
        reason: err instanceof Error ? err.message : String(err),
      });
      throw unauthorizedWebhook();
    }
    if (claims.sha256 !== createHash("sha256").update(body).digest("base64")) {
      this.#options.log.warn("Refused webhook: body hash does not match");
      throw unauthorizedWebhook();
    }
    let event: WebhookEvent;
    try {
      event = WebhookEvent.fromJson(JSON.parse(body), {
        ignoreUnknownFields: true,
      });
    } catch {
      throw new MatrixError(400, "M_NOT_JSON", "Error reading webhook");
    }
    const room = event.room?.name ?? "";
    const identity = event.participant?.identity ?? "";
    let signal: JobSignal;
    switch (event.event) {
      case "participant_joined":
        signal = "participantConnected";
        break;
      case "participant_left":
      case "participant_connection_aborted":
        signal = event.participant?.disconnectReason === CLIENT_INITIATED
          ? "leftIntentionally"
          : "connectionAborted";
        break;
      default:
        this.#options.log.debug("Ignored webhook {event}", {
          event: event.event,
        });
        return;
    }
    this.#options.log.debug("Webhook {event}", {
      event: event.event,
      room,
      identity,
    });
    this.#options.signal(room, identity, signal);
  }
}

function unauthorizedWebhook(): MatrixError {
  return new MatrixError(401, "M_UNAUTHORIZED", "Invalid webhook signature");
}
