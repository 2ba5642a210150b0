/**
 * @module Strict decoding of request bodies, with the semantics of the
 * reference's Go decoder: unknown fields are errors at any depth, keys match
 * fields exactly or else case-insensitively, a later key overwrites an
 * earlier one, `null` leaves a field as it was, missing fields are zero
 * values, wrong types (numbers with a fraction or exponent included) are
 * errors, and whatever follows the object is left unread.
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
    value = JSON.parse(firstObject(text), reviveNumber);
  } catch {
    throw notJson();
  }
  if (!isObject(value)) throw notJson();
  return decodeObject(value, shape) as T;
}

/**
 * The object `text` starts with: Go's Decoder reads one value and leaves
 * whatever follows it unread, so `{…} junk` decodes there. The text as it
 * is when it does not start with an object or the object does not close.
 */
function firstObject(text: string): string {
  let i = 0;
  while (i < text.length && " \t\r\n".includes(text[i]!)) i++;
  if (text[i] !== "{") return text;
  let depth = 0;
  let inString = false;
  for (; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
    } else if (c === "{" || c === "[") {
      depth++;
    } else if ((c === "}" || c === "]") && --depth === 0) {
      return text.slice(0, i + 1);
    }
  }
  return text;
}

/** What a number that Go's `int` would refuse becomes: a type error where it lands. */
const NOT_AN_INT = Symbol("not an int");
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * Go decodes only integer literals in int64's range into an `int`: `1.0`,
 * `1e3` and 2^63 are type errors there although JSON.parse reads numbers.
 */
function reviveNumber(
  _key: string,
  value: unknown,
  context?: { source?: string },
): unknown {
  const source = context?.source;
  if (typeof value !== "number" || source === undefined) return value;
  if (!/^-?\d+$/.test(source)) return NOT_AN_INT;
  const n = BigInt(source);
  return n < INT64_MIN || n > INT64_MAX ? NOT_AN_INT : Number(n);
}

function decodeObject(
  value: Record<string, unknown>,
  shape: Shape,
  into: Record<string, unknown> = zeroOf(shape),
): Record<string, unknown> {
  for (const [key, item] of Object.entries(value)) {
    const field = fieldOf(shape, key);
    if (field === undefined) throw notJson();
    into[field] = decodeField(item, shape[field]!, into[field]);
  }
  return into;
}

function zeroOf(shape: Shape): Record<string, unknown> {
  const zero: Record<string, unknown> = {};
  for (const [field, type] of Object.entries(shape)) {
    zero[field] = type === "string" ? "" : type === "int" ? 0 : zeroOf(type);
  }
  return zero;
}

/** The field `key` names: the exact one, else one equal under Go's case folding. */
function fieldOf(shape: Shape, key: string): string | undefined {
  if (Object.hasOwn(shape, key)) return key;
  const folded = foldName(key);
  return Object.keys(shape).find((field) => foldName(field) === folded);
}

/**
 * Go's `encoding/json` folding of names: ASCII letters upper-cased, and any
 * other character to upper(lower(c)), which is ASCII for four of them.
 * Every other non-ASCII character keeps a key from matching an ASCII field,
 * so it needs no mapping here.
 */
function foldName(name: string): string {
  return name.replace(/[a-z\u0130\u0131\u017f\u212a]/g, (c) => {
    switch (c) {
      case "\u0130": // İ: lower i, upper I
      case "\u0131": // ı: upper I
        return "I";
      case "\u017f": // ſ: upper S
        return "S";
      case "\u212a": // Kelvin sign: lower k, upper K
        return "K";
      default:
        return c.toUpperCase();
    }
  });
}

/** A JSON null leaves the field as it was, as in Go. */
function decodeField(
  value: unknown,
  type: FieldType,
  current: unknown,
): unknown {
  if (value === null) return current;
  if (type === "string") {
    if (typeof value !== "string") throw notJson();
    return value;
  }
  if (type === "int") {
    if (typeof value !== "number" || !Number.isInteger(value)) {
      throw notJson();
    }
    return value;
  }
  if (!isObject(value)) throw notJson();
  return decodeObject(value, type, current as Record<string, unknown>);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
