/** @module Memory and CPU of a process, read from /proc (Linux). */

const MIB = 1024 * 1024;
/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const TICKS = 100;

/**
 * VmRSS and VmHWM (peak RSS) of a process, in MiB, and RSS split into
 * anonymous memory and file pages (mostly the deno binary's own code).
 */
export function memoryOf(
  pid: number | "self",
): { rss: number; hwm: number; anon: number; file: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kib = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return {
    rss: kib("VmRSS") * 1024 / MIB,
    hwm: kib("VmHWM") * 1024 / MIB,
    anon: kib("RssAnon") * 1024 / MIB,
    file: kib("RssFile") * 1024 / MIB,
  };
}

/** User plus system CPU seconds a process has used so far. */
export function cpuSecondsOf(pid: number | "self"): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the parenthesised command name; utime and stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

/** Samples a process's RSS and CPU while something runs. */
export class ProcessSampler {
  readonly #pid: number | "self";
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #cpu0: number;
  readonly #t0 = performance.now();
  maxRss = 0;

  constructor(pid: number | "self", everyMs = 100) {
    this.#pid = pid;
    this.#cpu0 = cpuSecondsOf(pid);
    this.#lastCpu = this.#cpu0;
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), everyMs);
  }

  #lastCpu: number;

  #sample(): void {
    try {
      this.maxRss = Math.max(this.maxRss, memoryOf(this.#pid).rss);
      this.#lastCpu = cpuSecondsOf(this.#pid);
    } catch {
      // The process is gone: its last reading stands.
    }
  }

  /** Stops; CPU is in percent of one core over the sampled time. */
  stop(): { cpuPercent: number; maxRssMiB: number; seconds: number } {
    clearInterval(this.#timer);
    this.#sample();
    const seconds = (performance.now() - this.#t0) / 1000;
    const cpu = this.#lastCpu - this.#cpu0;
    return {
      cpuPercent: (cpu / seconds) * 100,
      maxRssMiB: this.maxRss,
      seconds,
    };
  }
}

/** Busy and total CPU seconds of the whole machine (all cores), from /proc/stat. */
export function machineCpuSeconds(): { busy: number; total: number } {
  const line = Deno.readTextFileSync("/proc/stat").split("\n")[0]!;
  // cpu user nice system idle iowait irq softirq steal ...
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.split(
    /\s+/,
  ).slice(1).map(Number) as number[];
  const busy = user! + nice! + system! + irq! + softirq! + steal!;
  return { busy: busy / TICKS, total: (busy + idle! + iowait!) / TICKS };
}

/** CPU of the whole machine between construction and `stop()`, % of one core. */
export class MachineSampler {
  readonly #start = machineCpuSeconds();
  readonly #t0 = performance.now();

  stop(): number {
    const end = machineCpuSeconds();
    const seconds = (performance.now() - this.#t0) / 1000;
    return ((end.busy - this.#start.busy) / seconds) * 100;
  }
}
