/**
 * @module Strict decoding of request bodies, with the semantics of the
 * reference's Go decoder: unknown fields are errors at any depth, `null` and
 * missing fields are zero values, wrong types are errors.
 */

import { notJson } from "./errors.ts";

/** A field's type: a string, an integer, or a nested object. */
export type FieldType = "string" | "int" | Shape;
/** The fields an object may have. */
export interface Shape {
  readonly [field: string]: FieldType;
}

/** The OpenID token a client obtained from its homeserver. */
export interface OpenIdToken {
  access_token: string;
  token_type: string;
  matrix_server_name: string;
  expires_in: number;
}

const OPENID_TOKEN: Shape = {
  access_token: "string",
  token_type: "string",
  matrix_server_name: "string",
  expires_in: "int",
};

/** Body of `/get_token` and `/delegate_delayed_leave` (MSC4195). */
export interface TokenRequest {
  room_id: string;
  slot_id: string;
  openid_token: OpenIdToken;
  member: { id: string; claimed_user_id: string; claimed_device_id: string };
  delay_id: string;
  delay_timeout: number;
  delay_cs_api_url: string;
}

export const TOKEN_REQUEST: Shape = {
  room_id: "string",
  slot_id: "string",
  openid_token: OPENID_TOKEN,
  member: {
    id: "string",
    claimed_user_id: "string",
    claimed_device_id: "string",
  },
  delay_id: "string",
  delay_timeout: "int",
  delay_cs_api_url: "string",
};

/** Body of the deprecated `/sfu/get`. */
export interface LegacyTokenRequest {
  room: string;
  openid_token: OpenIdToken;
  device_id: string;
  delay_id: string;
  delay_timeout: number;
  delay_cs_api_url: string;
}

export const LEGACY_TOKEN_REQUEST: Shape = {
  room: "string",
  openid_token: OPENID_TOKEN,
  device_id: "string",
  delay_id: "string",
  delay_timeout: "int",
  delay_cs_api_url: "string",
};

/** Parses `text` as an object of `shape`, or throws 400 `M_NOT_JSON`. */
export function decodeBody<T>(text: string, shape: Shape): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw notJson();
  }
  if (!isObject(value)) throw notJson();
  return decodeObject(value, shape) as T;
}

function decodeObject(
  value: Record<string, unknown>,
  shape: Shape,
): Record<string, unknown> {
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(shape, key)) throw notJson();
  }
  const out: Record<string, unknown> = {};
  for (const [key, type] of Object.entries(shape)) {
    out[key] = decodeField(value[key], type);
  }
  return out;
}

function decodeField(value: unknown, type: FieldType): unknown {
  if (type === "string") {
    if (value === undefined || value === null) return "";
    if (typeof value !== "string") throw notJson();
    return value;
  }
  if (type === "int") {
    if (value === undefined || value === null) return 0;
    if (typeof value !== "number" || !Number.isSafeInteger(value)) {
      throw notJson();
    }
    return value;
  }
  if (value === undefined || value === null) return decodeObject({}, type);
  if (!isObject(value)) throw notJson();
  return decodeObject(value, type);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
