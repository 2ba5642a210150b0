// A real LiveKit participant for tests/e2e/: libwebrtc through
// @livekit/rtc-node joins the room of a token, publishes a silent microphone
// track and stays until it is killed (SIGKILL: no goodbye, the SFU must notice
// by itself) or asked to leave (SIGTERM or SIGINT: a clean leave).
//
// Input:  LK_URL (the SFU's ws:// URL) and LK_TOKEN (the JWT), from the
//         environment so the token does not show in process listings.
// Output: one JSON object a line on stdout:
//         {"event":"joined","room":…,"identity":…,"sid":…}
//         {"event":"published","track":…}
//         {"event":"error","message":…}   (then exit 1)
//         {"event":"disconnected","reason":…}
//         {"event":"left"}                (then exit 0)
//
// CommonJS on purpose: `deno check tests/` skips it, so the Deno project's
// import map need not know this Node project's dependency.

const {
  AudioFrame,
  AudioSource,
  dispose,
  LocalAudioTrack,
  Room,
  RoomEvent,
  TrackPublishOptions,
  TrackSource,
} = require("@livekit/rtc-node");

const SAMPLE_RATE = 48_000;
const FRAME_MS = 20;

function emit(event) {
  process.stdout.write(JSON.stringify(event) + "\n");
}

function fail(err) {
  emit({
    event: "error",
    message: err instanceof Error ? err.message : String(err),
  });
  process.exit(1);
}

async function main() {
  const url = process.env.LK_URL;
  const token = process.env.LK_TOKEN;
  if (!url || !token) fail(new Error("LK_URL and LK_TOKEN must be set"));

  const room = new Room();
  let leaving = false;
  room.on(RoomEvent.Disconnected, (reason) => {
    if (!leaving) emit({ event: "disconnected", reason: String(reason) });
  });

  await room.connect(url, token, { autoSubscribe: true, dynacast: false });
  emit({
    event: "joined",
    room: room.name,
    identity: room.localParticipant?.identity,
    sid: await room.getSid(),
  });

  // A microphone that sends silence, as a muted caller's client does.
  const source = new AudioSource(SAMPLE_RATE, 1);
  const track = LocalAudioTrack.createAudioTrack("microphone", source);
  const options = new TrackPublishOptions();
  options.source = TrackSource.SOURCE_MICROPHONE;
  const publication = await room.localParticipant.publishTrack(track, options);
  emit({ event: "published", track: publication.sid });
  const samples = (SAMPLE_RATE * FRAME_MS) / 1000;
  const silence = new AudioFrame(
    new Int16Array(samples),
    SAMPLE_RATE,
    1,
    samples,
  );
  const pump = setInterval(() => {
    source.captureFrame(silence).catch(() => {});
  }, FRAME_MS);

  async function leave() {
    if (leaving) return;
    leaving = true;
    clearInterval(pump);
    await room.disconnect();
    await dispose();
    emit({ event: "left" });
    process.exit(0);
  }
  process.on("SIGTERM", leave);
  process.on("SIGINT", leave);
}

main().catch(fail);
