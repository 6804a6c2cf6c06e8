/**
 * A process's memory and CPU from /proc: VmRSS and VmHWM (/proc/<pid>/status) and utime + stime
 * (/proc/<pid>/stat, clock ticks of 1/100 s), and CPU use over an interval as a share of one core.
 * Also the open-files limit this process (and its children) run with.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

export interface Usage {
  rssMb: number;
  hwmMb: number;
  /** utime + stime so far, seconds. */
  cpuS: number;
  at: number;
}

/** NaN fields when the process is gone. */
export function usage(pid: number): Usage {
  const at = performance.now();
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { rssMb: kb("VmRSS") / 1024, hwmMb: kb("VmHWM") / 1024, cpuS: (Number(fields[11]) + Number(fields[12])) / 100, at };
  } catch {
    return { rssMb: Number.NaN, hwmMb: Number.NaN, cpuS: Number.NaN, at };
  }
}

/** CPU used between two readings of one process, percent of one core. */
export function cpuPercent(a: Usage, b: Usage): number {
  return ((b.cpuS - a.cpuS) / ((b.at - a.at) / 1000)) * 100;
}

/**
 * Raises this process's soft open-files limit to `want` (children, the controller and its
 * nats-server included, inherit it) with prlimit on its own pid. Throws when the hard limit is lower.
 */
export function raiseOpenFiles(want: number): { soft: number; hard: number } {
  const read = () => {
    const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    const n = (x: string | undefined) => (x === "unlimited" ? Number.POSITIVE_INFINITY : Number(x ?? Number.NaN));
    return { soft: n(m?.[1]), hard: n(m?.[2]) };
  };
  const now = read();
  if (now.soft >= want) return now;
  if (now.hard < want) throw new Error(`open files: need ${want} (one per agent in nats-server), the hard limit is ${now.hard}; raise it (ulimit -Hn as root, or LimitNOFILE) or run fewer agents`);
  const r = spawnSync("prlimit", ["--pid", String(process.pid), `--nofile=${want}:${now.hard}`], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`prlimit --nofile=${want}: ${r.stderr.trim()}`);
  return read();
}
