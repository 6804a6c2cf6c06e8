/**
 * Control-plane outages on the lab, for the fail-static tests and the outage benchmark: freeze
 * the controller and its embedded nats-server (SIGSTOP both: a paused VM, a hung host) and thaw
 * them, or kill both (SIGKILL: a crashed host) and start the controller again on the same state,
 * which starts its nats-server again; cut the hosts off the controller's NATS port (so the control
 * plane can come back before the agents can report to it); plus continuous pings that count every
 * request and reply.
 */
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { LabError } from "./errors.js";
import { labExec, spawnInHost } from "./exec.js";
import { CONTROLLER_NATS_PORT, type LabCluster } from "./cluster.js";
import type { LabOptions } from "./options.js";

export interface ControlPlanePids {
  controller: number;
  nats: number;
}

/** The controller's and its nats-server's pids; throws when either is not running. */
export async function controlPlanePids(cluster: LabCluster): Promise<ControlPlanePids> {
  const controller = cluster.controllerPid;
  const nats = await cluster.natsServerPid();
  if (controller === undefined || nats === undefined) throw new LabError(`the control plane is not running (controller pid ${controller ?? "-"}, nats-server pid ${nats ?? "-"})`);
  return { controller, nats };
}

/** SIGSTOP to the controller and its nats-server; returns their pids for `thawControlPlane`. */
export async function freezeControlPlane(cluster: LabCluster): Promise<ControlPlanePids> {
  const pids = await controlPlanePids(cluster);
  process.kill(pids.nats, "SIGSTOP");
  process.kill(pids.controller, "SIGSTOP");
  for (const pid of [pids.nats, pids.controller]) {
    let state = "";
    for (let i = 0; i < 100 && state !== "T"; i++) {
      state = processState(pid);
      if (state !== "T") await new Promise((r) => setTimeout(r, 20));
    }
    if (state !== "T") throw new LabError(`process ${pid} is in state ${state || "?"} after SIGSTOP, want T (stopped)`);
  }
  return pids;
}

/** The one-letter state of a process from /proc/<pid>/stat (`T`: stopped); "" when it is gone. */
function processState(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0] ?? "";
  } catch {
    return "";
  }
}

/** SIGCONT to both (at once, as a resumed VM); a process already gone is skipped. Safe to call twice. */
export function thawControlPlane(pids: ControlPlanePids): void {
  for (const pid of [pids.nats, pids.controller]) {
    try {
      process.kill(pid, "SIGCONT");
    } catch {
      // gone already
    }
  }
}

/**
 * SIGKILL to the controller and then its nats-server (which would otherwise outlive it: a child
 * is not killed with its parent). `cluster.startController()` later restarts both on the same state.
 */
export async function killControlPlane(cluster: LabCluster): Promise<ControlPlanePids> {
  const pids = await controlPlanePids(cluster);
  await cluster.stopController("SIGKILL");
  try {
    process.kill(pids.nats, "SIGKILL");
  } catch {
    // gone already
  }
  for (let i = 0; i < 100 && processExists(pids.nats); i++) await new Promise((r) => setTimeout(r, 50));
  if (processExists(pids.nats)) throw new LabError(`nats-server ${pids.nats} still runs after SIGKILL`);
  return pids;
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Cuts (or heals) every lab host's way to the controller's NATS port: the `ctl` namespace drops
 * TCP to it arriving from anywhere but loopback (the controller's own connection). Idempotent.
 */
export async function labCutAgentsFromNats(opts: LabOptions, cut: boolean): Promise<void> {
  const rule = ["INPUT", "-p", "tcp", "--dport", String(CONTROLLER_NATS_PORT), "!", "-i", "lo", "-j", "DROP"];
  const ipt = (...args: string[]) => labExec(opts, "ctl", ["iptables", "-w", "5", ...args]);
  const present = (await ipt("-C", ...rule)).exitCode === 0;
  if (cut === present) return;
  const res = await ipt(cut ? "-I" : "-D", ...rule);
  if (res.exitCode !== 0) throw new LabError(`ctl: iptables ${cut ? "-I" : "-D"} ${rule.join(" ")}: exit ${res.exitCode}: ${res.stderr.trim()}`);
}

export interface PingCount {
  /** Echo requests sent (ping's own count), replies received, and the sequence numbers below the last reply that got none. */
  sent: number;
  replies: number;
  lost: number[];
}

export interface PingStream {
  readonly from: string;
  readonly address: string;
  /** Replies and gaps so far, the stream still running. */
  count(): PingCount;
  /** Stops the ping (SIGINT) and counts; a request still in flight at the stop is not lost. */
  stop(): Promise<PingCount>;
}

/**
 * `ping -n -i <intervalS> <address>` from a lab node's namespace until stopped; every reply's
 * icmp_seq is recorded, so a loss anywhere in the stream shows as a gap. `-i` below 0.2 s needs root.
 */
export function startPingStream(opts: LabOptions, from: string, address: string, intervalS = 0.2): PingStream {
  const child: ChildProcess = spawnInHost(opts, from, ["ping", "-n", "-i", String(intervalS), address], { stdio: ["ignore", "pipe", "pipe"] });
  const seqs = new Set<number>();
  let transmitted: number | undefined;
  let buf = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => {
    buf += d;
    const lines = buf.split("\n");
    buf = lines.pop() ?? "";
    for (const l of lines) {
      const m = /icmp_seq=(\d+).*time=/.exec(l);
      if (m) seqs.add(Number(m[1]));
      const t = /^(\d+) packets transmitted/.exec(l);
      if (t) transmitted = Number(t[1]);
    }
  });
  child.stderr!.resume();
  const exited = new Promise<void>((r) => child.once("close", () => r()));
  const count = (): PingCount => {
    const last = Math.max(0, ...seqs);
    const lost: number[] = [];
    for (let i = 1; i <= last; i++) if (!seqs.has(i)) lost.push(i);
    return { sent: transmitted ?? last, replies: seqs.size, lost };
  };
  return {
    from,
    address,
    count,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT");
      await exited;
      return count();
    },
  };
}
