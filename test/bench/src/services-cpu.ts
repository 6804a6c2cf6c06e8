/**
 * Where the CPU went during one services-benchmark measurement: the machine's busy time and CPU
 * pressure (/proc/stat, /proc/pressure/cpu), each lab host's cgroup (wrk and the client-side
 * HAProxy run in gcp-1's; the backends' HAProxy in theirs), the lab's wireguard-go processes and
 * agents (from /proc by pid), and what the rest of the machine (other processes) used. Snapshots
 * are read from /proc and cgroupfs (readCpuSnapshot); the difference is pure (cpuDelta).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const USER_HZ = 100;

export interface CpuSnapshot {
  atMs: number;
  /** Machine-wide jiffies: busy (everything but idle and iowait), hard and soft interrupts (in no process's time: the network stack's receive work), and all. */
  busyTicks: number;
  irqTicks: number;
  allTicks: number;
  /** /proc/pressure/cpu `some total` (µs some task waited for a CPU), undefined without PSI. */
  pressureSomeUs: number | undefined;
  /** cgroup cpu.stat usage_usec by name (a lab host). */
  cgroupsUs: Record<string, number>;
  /** CPU ticks of named process groups (e.g. `wireguard-go`, `agents`), summed over their pids. */
  groupsTicks: Record<string, number>;
}

/** One measurement's CPU, in CPU-seconds (1 s of one core = 1), and the machine's busy share. */
export interface CpuUse {
  seconds: number;
  /** Busy share of all cores over the interval, 0..1. */
  machineBusy: number;
  /** Seconds some task was waiting for a CPU (PSI), per wall second; undefined without PSI. */
  pressureSome: number | undefined;
  cgroups: Record<string, number>;
  groups: Record<string, number>;
  /** Hard and soft interrupt CPU-seconds, machine-wide (veth, bridge, NAT and UDP receive work of every namespace). */
  irq: number;
  /** Busy CPU-seconds accounted neither to the lab (its cgroups and groups) nor to interrupts: other processes on the machine. */
  other: number;
}

/** Parses the `cpu` line of /proc/stat into busy and total jiffies. */
export function parseProcStat(text: string): { busy: number; irq: number; all: number } {
  const line = /^cpu\s+(.+)$/m.exec(text)?.[1];
  if (!line) throw new Error("/proc/stat has no cpu line");
  const v = line.trim().split(/\s+/).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already in user)
  const all = v.slice(0, 8).reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const irq = (v[5] ?? 0) + (v[6] ?? 0);
  return { busy: all - idle, irq, all };
}

/** `usage_usec` of a cgroup v2 cpu.stat. */
export function parseCgroupUsage(text: string): number | undefined {
  const m = /^usage_usec (\d+)$/m.exec(text);
  return m?.[1] ? Number(m[1]) : undefined;
}

/** `some ... total=<µs>` of /proc/pressure/cpu. */
export function parsePressureSome(text: string): number | undefined {
  const m = /^some .*total=(\d+)/m.exec(text);
  return m?.[1] ? Number(m[1]) : undefined;
}

/** utime + stime ticks of /proc/<pid>/stat (fields 14 and 15; the comm may contain spaces). */
export function parsePidTicks(text: string): number | undefined {
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const t = Number(fields[11]) + Number(fields[12]);
  return Number.isFinite(t) ? t : undefined;
}

const read = (path: string): string | undefined => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
};

/** Pids whose command line matches: `match(comm, cmdline)` (cmdline NULs as spaces). */
export function findPids(match: (comm: string, cmdline: string) => boolean): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const comm = read(`/proc/${d}/comm`)?.trim();
    const cmdline = read(`/proc/${d}/cmdline`)?.replace(/\0/g, " ");
    if (comm !== undefined && cmdline !== undefined && match(comm, cmdline)) out.push(Number(d));
  }
  return out;
}

export function readCpuSnapshot(cgroups: Record<string, string>, groups: Record<string, readonly number[]>): CpuSnapshot {
  const stat = parseProcStat(read("/proc/stat") ?? "");
  const cgroupsUs: Record<string, number> = {};
  for (const [name, dir] of Object.entries(cgroups)) {
    const us = parseCgroupUsage(read(join(dir, "cpu.stat")) ?? "");
    if (us !== undefined) cgroupsUs[name] = us;
  }
  const groupsTicks: Record<string, number> = {};
  for (const [name, pids] of Object.entries(groups)) {
    groupsTicks[name] = pids.reduce((a, pid) => a + (parsePidTicks(read(`/proc/${pid}/stat`) ?? "") ?? 0), 0);
  }
  const pressure = read("/proc/pressure/cpu");
  return { atMs: Date.now(), busyTicks: stat.busy, irqTicks: stat.irq, allTicks: stat.all, pressureSomeUs: pressure === undefined ? undefined : parsePressureSome(pressure), cgroupsUs, groupsTicks };
}

export function cpuDelta(a: CpuSnapshot, b: CpuSnapshot): CpuUse {
  const seconds = (b.atMs - a.atMs) / 1000;
  const cgroups = Object.fromEntries(Object.keys(b.cgroupsUs).map((k) => [k, ((b.cgroupsUs[k] ?? 0) - (a.cgroupsUs[k] ?? 0)) / 1e6]));
  const groups = Object.fromEntries(Object.keys(b.groupsTicks).map((k) => [k, ((b.groupsTicks[k] ?? 0) - (a.groupsTicks[k] ?? 0)) / USER_HZ]));
  const busy = (b.busyTicks - a.busyTicks) / USER_HZ;
  const irq = (b.irqTicks - a.irqTicks) / USER_HZ;
  const lab = [...Object.values(cgroups), ...Object.values(groups)].reduce((x, y) => x + y, 0);
  return {
    seconds,
    machineBusy: b.allTicks > a.allTicks ? (b.busyTicks - a.busyTicks) / (b.allTicks - a.allTicks) : NaN,
    pressureSome: a.pressureSomeUs !== undefined && b.pressureSomeUs !== undefined && seconds > 0 ? (b.pressureSomeUs - a.pressureSomeUs) / 1e6 / seconds : undefined,
    cgroups,
    groups,
    irq,
    other: Math.max(0, busy - irq - lab),
  };
}
