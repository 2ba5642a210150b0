/** @module LiveKit identities, room names and access tokens (SPEC section 7). */

import { SignJWT } from "jose";

/** Lifetime of a participant token, as the reference issues it. */
export const TOKEN_TTL_SECONDS = 3600;

/**
 * Encodes a list of strings as compact JSON exactly like Go's `encoding/json`,
 * which also escapes `<`, `>`, `&`, U+2028 and U+2029, so that hashes match the
 * reference byte for byte.
 */
export function goJsonStringArray(values: readonly string[]): string {
  return JSON.stringify(values).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** Unpadded standard base64 of SHA-256 of the Go-style JSON array of `values`. */
export async function hashList(values: readonly string[]): Promise<string> {
  const bytes = new TextEncoder().encode(goJsonStringArray(values));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return base64(digest).replace(/=+$/, "");
}

/** The LiveKit room name of a MatrixRTC session: `hash([room_id, slot_id])`. */
export function roomName(roomId: string, slotId: string): Promise<string> {
  return hashList([roomId, slotId]);
}

/** The LiveKit identity of a call member: `hash([user, device, member id])`. */
export function participantIdentity(
  userId: string,
  deviceId: string,
  memberId: string,
): Promise<string> {
  return hashList([userId, deviceId, memberId]);
}

/** The grants a token carries; LiveKit's JSON names. */
export interface VideoGrant {
  room?: string;
  roomJoin?: boolean;
  roomCreate?: boolean;
  roomAdmin?: boolean;
  canPublish?: boolean;
  canSubscribe?: boolean;
  canUpdateOwnMetadata?: boolean;
}

/** Signs LiveKit access tokens with one imported key, so the hot path does no key work. */
export class TokenSigner {
  readonly #apiKey: string;
  readonly #key: Promise<CryptoKey>;
  readonly #now: () => number;

  constructor(apiKey: string, apiSecret: string, now: () => number = Date.now) {
    this.#apiKey = apiKey;
    this.#now = now;
    this.#key = crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode(apiSecret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
  }

  /** A token for `identity` (none when empty) with `video` grants, valid for `ttlSeconds`. */
  async sign(
    identity: string,
    video: VideoGrant,
    ttlSeconds: number,
  ): Promise<string> {
    const now = Math.floor(this.#now() / 1000);
    const jwt = new SignJWT({ video })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setIssuer(this.#apiKey)
      .setNotBefore(now)
      .setExpirationTime(now + ttlSeconds);
    // Server API tokens (Twirp calls) speak for no participant.
    if (identity !== "") jwt.setSubject(identity);
    return await jwt.sign(await this.#key);
  }

  /** The token a call member joins with: no `roomCreate`, one hour. */
  participantToken(identity: string, room: string): Promise<string> {
    return this.sign(identity, {
      room,
      roomJoin: true,
      canPublish: true,
      canSubscribe: true,
      canUpdateOwnMetadata: true,
    }, TOKEN_TTL_SECONDS);
  }
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}
