/** @module A fake LiveKit SFU RoomService speaking Twirp with binary protobuf. */

import {
  CreateRoomRequest,
  ParticipantInfo,
  ParticipantInfo_State,
  Room,
  RoomParticipantIdentity,
} from "@livekit/protocol";
import { type JWTPayload, jwtVerify } from "jose";

/** Start options: the API key and secret the service signs with. */
export interface FakeSfuOptions {
  apiKey: string;
  apiSecret: string;
}

/** One request as the fake saw it. */
export interface SfuRequest {
  method: string;
  path: string;
  contentType: string | null;
}

/** One GetParticipant call (recorded once decoded, whatever the auth). */
export interface SfuLookup {
  room: string;
  identity: string;
  at: number;
}

const PREFIX = "/twirp/livekit.RoomService/";

/** A Twirp error: JSON `{"code","msg"}` with the status Twirp maps it to. */
function twirpError(status: number, code: string, msg: string): Response {
  return Response.json({ code, msg }, { status });
}

function protobuf(message: { toBinary(): Uint8Array }): Response {
  return new Response(message.toBinary() as Uint8Array<ArrayBuffer>, {
    headers: { "content-type": "application/protobuf" },
  });
}

/** Thrown inside the handler to answer a Twirp error. */
class TwirpError extends Error {
  constructor(readonly status: number, readonly code: string, msg: string) {
    super(msg);
  }
}

/** The `video` grant of a LiveKit access token, as far as we check it. */
interface VideoGrant {
  room?: unknown;
  roomCreate?: unknown;
  roomAdmin?: unknown;
}

/** The fake SFU; build it with {@linkcode startFakeSfu}. */
export class FakeSfu {
  readonly port: number;
  /** `ws://127.0.0.1:<port>`: what the service gets as LIVEKIT_URL. */
  readonly url: string;
  /** `http://127.0.0.1:<port>` */
  readonly httpUrl: string;
  /** Every request, in arrival order (also while `down`). */
  readonly requests: SfuRequest[] = [];
  /** Every authorised CreateRoom request, in order. */
  readonly createdRooms: CreateRoomRequest[] = [];
  /** The last CreateRoom request per room name. */
  readonly rooms: Map<string, CreateRoomRequest> = new Map();
  /** Present participants as `"<room>|<identity>"`. */
  readonly participants: Set<string> = new Set();
  /** Every GetParticipant call. */
  readonly lookups: SfuLookup[] = [];
  /** Claims of every bearer token that verified, in order. */
  readonly claims: JWTPayload[] = [];
  /** When true, every request answers 503 `unavailable`. */
  down = false;

  #key: string;
  #secret: Uint8Array;
  #server: Deno.HttpServer<Deno.NetAddr>;
  #closing: Promise<void> | undefined;

  constructor(opts: FakeSfuOptions) {
    this.#key = opts.apiKey;
    this.#secret = new TextEncoder().encode(opts.apiSecret);
    this.#server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen() {}, // no "Listening on" line in test output
    }, (req) => this.#handle(req));
    this.port = this.#server.addr.port;
    this.url = `ws://127.0.0.1:${this.port}`;
    this.httpUrl = `http://127.0.0.1:${this.port}`;
  }

  /** Marks `identity` as present in `room`. */
  addParticipant(room: string, identity: string): void {
    this.participants.add(`${room}|${identity}`);
  }

  /** Marks `identity` as gone from `room`. */
  removeParticipant(room: string, identity: string): void {
    this.participants.delete(`${room}|${identity}`);
  }

  /** Stops the server; safe to call twice. */
  close(): Promise<void> {
    this.#closing ??= this.#server.shutdown().then(() => this.#server.finished);
    return this.#closing;
  }

  async #handle(req: Request): Promise<Response> {
    const path = new URL(req.url).pathname;
    const contentType = req.headers.get("content-type");
    this.requests.push({ method: req.method, path, contentType });
    const body = new Uint8Array(await req.arrayBuffer());
    if (this.down) return twirpError(503, "unavailable", "down");
    try {
      if (req.method !== "POST" || !path.startsWith(PREFIX)) {
        throw new TwirpError(404, "bad_route", `no handler for ${path}`);
      }
      const method = path.slice(PREFIX.length);
      if (method !== "CreateRoom" && method !== "GetParticipant") {
        throw new TwirpError(404, "bad_route", `no handler for ${path}`);
      }
      const mediaType = contentType?.split(";")[0]?.trim().toLowerCase();
      if (mediaType !== "application/protobuf") {
        throw new TwirpError(
          400,
          "malformed",
          `unexpected Content-Type: ${contentType}`,
        );
      }
      return method === "CreateRoom"
        ? await this.#createRoom(req, body)
        : await this.#getParticipant(req, body);
    } catch (e) {
      if (e instanceof TwirpError) {
        return twirpError(e.status, e.code, e.message);
      }
      throw e;
    }
  }

  async #createRoom(req: Request, body: Uint8Array): Promise<Response> {
    const grant = await this.#verify(req);
    const create = decode(() => CreateRoomRequest.fromBinary(body));
    if (grant.roomCreate !== true) {
      throw new TwirpError(401, "unauthenticated", "permissions denied");
    }
    this.createdRooms.push(create);
    this.rooms.set(create.name, create);
    return protobuf(
      new Room({
        sid: "RM_fake",
        name: create.name,
        emptyTimeout: create.emptyTimeout,
        departureTimeout: create.departureTimeout,
        maxParticipants: create.maxParticipants,
      }),
    );
  }

  async #getParticipant(req: Request, body: Uint8Array): Promise<Response> {
    const get = decode(() => RoomParticipantIdentity.fromBinary(body));
    this.lookups.push({
      room: get.room,
      identity: get.identity,
      at: Date.now(),
    });
    const grant = await this.#verify(req);
    if (grant.roomAdmin !== true || grant.room !== get.room) {
      throw new TwirpError(401, "unauthenticated", "permissions denied");
    }
    if (!this.participants.has(`${get.room}|${get.identity}`)) {
      throw new TwirpError(404, "not_found", "participant not found");
    }
    return protobuf(
      new ParticipantInfo({
        sid: "PA_fake",
        identity: get.identity,
        state: ParticipantInfo_State.ACTIVE,
      }),
    );
  }

  /** Checks the bearer token with jose (not the service's own code). */
  async #verify(req: Request): Promise<VideoGrant> {
    const auth = req.headers.get("authorization") ?? "";
    if (!auth.startsWith("Bearer ")) {
      throw new TwirpError(401, "unauthenticated", "no bearer token");
    }
    try {
      const { payload } = await jwtVerify(auth.slice(7), this.#secret, {
        algorithms: ["HS256"],
        issuer: this.#key,
      });
      this.claims.push(payload);
      const video = payload.video;
      return typeof video === "object" && video !== null ? video : {};
    } catch (e) {
      throw new TwirpError(
        401,
        "unauthenticated",
        `invalid token: ${e instanceof Error ? e.message : e}`,
      );
    }
  }
}

/** Decodes a request body; protobuf errors become Twirp `malformed`. */
function decode<T>(parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    throw new TwirpError(
      400,
      "malformed",
      `cannot decode request: ${e instanceof Error ? e.message : e}`,
    );
  }
}

/** Starts a fake SFU on 127.0.0.1 that accepts tokens signed with `opts`. */
export function startFakeSfu(opts: FakeSfuOptions): Promise<FakeSfu> {
  return Promise.resolve(new FakeSfu(opts));
}
