/**
 * @module CPU profiles of the service under load, through the V8 inspector
 * (`--inspect`; Deno 2.9 has no `--cpu-prof`): start and stop the sampling
 * profiler over the Chrome DevTools Protocol, save a `.cpuprofile` that
 * DevTools opens, and summarise where the time goes.
 */

interface ProfileNode {
  id: number;
  callFrame: {
    functionName: string;
    url: string;
    lineNumber: number;
    columnNumber: number;
  };
  children?: number[];
}

/** A V8 CPU profile as `Profiler.stop` returns it. */
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** A free loopback port for `--inspect=127.0.0.1:<port>`. */
export function inspectorPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** A CDP session with the service's inspector. */
export class InspectorProfiler {
  readonly #ws: WebSocket;
  #id = 0;
  readonly #pending = new Map<number, (result: unknown) => void>();

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.id !== undefined) {
        this.#pending.get(message.id)?.(message.result ?? message.error);
      }
    };
  }

  static async connect(port: number): Promise<InspectorProfiler> {
    const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`))
      .json();
    const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = reject;
    });
    const profiler = new InspectorProfiler(ws);
    await profiler.#send("Profiler.enable");
    await profiler.#send("Profiler.setSamplingInterval", { interval: 200 });
    return profiler;
  }

  #send(
    method: string,
    params: Record<string, unknown> = {},
  ): Promise<unknown> {
    const id = ++this.#id;
    const { promise, resolve } = Promise.withResolvers<unknown>();
    this.#pending.set(id, resolve);
    this.#ws.send(JSON.stringify({ id, method, params }));
    return promise;
  }

  async start(): Promise<void> {
    await this.#send("Profiler.start");
  }

  async stop(): Promise<CpuProfile> {
    const result = await this.#send("Profiler.stop") as { profile: CpuProfile };
    return result.profile;
  }

  close(): void {
    this.#ws.close();
  }
}

/** Self time by function and by module, largest first, as text lines. */
export function summarize(profile: CpuProfile, top = 30): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) =>
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
  );
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byFunction = new Map<string, number>();
  const byModule = new Map<string, number>();
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    const url = shortUrl(f.url);
    const name = `${f.functionName || "(anonymous)"} ${url}${
      url ? `:${f.lineNumber + 1}` : ""
    }`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
    const module = url === ""
      ? `(${f.functionName})`
      : url.replace(/\/[^/]*$/, "/") + url.split("/").pop();
    byModule.set(module, (byModule.get(module) ?? 0) + us);
  }
  // Inclusive time: each sample counts once for every function on its stack.
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const inclusive = new Map<string, number>();
  for (const [id, us] of self) {
    const seen = new Set<string>();
    for (
      let at: number | undefined = id;
      at !== undefined;
      at = parent.get(at)
    ) {
      const f = byId.get(at)!.callFrame;
      if (f.url === "") continue;
      const url = shortUrl(f.url);
      seen.add(`${f.functionName || "(anonymous)"} ${url}:${f.lineNumber + 1}`);
    }
    for (const k of seen) inclusive.set(k, (inclusive.get(k) ?? 0) + us);
  }
  const lines = (map: Map<string, number>) =>
    [...map].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, us]) =>
      `${(us / total * 100).toFixed(1).padStart(5)} %  ${k}`
    );
  // Inclusive time of our own modules: how much of the total runs under them.
  return [
    `profile: ${(total / 1e6).toFixed(1)} s sampled`,
    "self time by function:",
    ...lines(byFunction),
    "self time by script:",
    ...lines(byModule).slice(0, 20),
    "total (inclusive) time by function:",
    ...lines(inclusive),
  ].join("\n");
}

function shortUrl(url: string): string {
  return url.replace(/^file:\/\/.*?\/(lib\/|main\.ts)/, "$1")
    .replace(/^file:\/\/.*\/registry\.npmjs\.org\//, "npm:");
}
