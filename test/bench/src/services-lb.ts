/**
 * What the client node's load balancer did during one services-benchmark measurement, read from
 * its pinned maps (`<pinDir>/maps/weft_lb_stats`, `weft_lb_nat`): connections balanced per backend
 * on the VIP (both paths count them) and the flows the tc fallback NATs (weft_lb_nat entries).
 * With every client process in the agent's cgroup, the socket path balances all of them and the
 * tc fallback holds nothing: the bench checks that, so (b) measures connect-time balancing and
 * never per-packet NAT. And, when the kernel keeps BPF run statistics (sysctl
 * kernel.bpf_stats_enabled=1), the runs and nanoseconds of each program attached to the client's
 * cgroup (connect4, sock_ops, …): the only work the VIP path adds, measured. readLbSnapshot and
 * readProgStats read; lbDelta is pure.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { BpfMap, LbMapName, TypedMap, lbFlowKeyCodec, lbNatValueCodec, lbStatsKeyCodec, lbStatsValueCodec } from "@weft/bpf";

export interface LbSnapshot {
  /** backend address → connects, established, failures on the VIP. */
  backends: Record<string, { connects: number; established: number; failures: number }>;
  /** Flows in the tc fallback's NAT table to the VIP. */
  tcNatFlows: number;
  /** Programs attached to the client's cgroup: name → runs and total run time (only with BPF stats on). */
  progs: Record<string, { runs: number; ns: number }>;
}

export interface LbUse {
  /** New connections balanced to each backend during the measurement. */
  connects: Record<string, number>;
  failures: number;
  /** tc-fallback flows to the VIP at the end (0: every connection took the socket path). */
  tcNatFlows: number;
  /** Runs and mean ns per run of each cgroup program during the measurement (BPF stats on only). */
  progs: Record<string, { runs: number; nsPerRun: number }>;
}

/** run_cnt and run_time_ns of the programs attached to a cgroup (bpftool); {} when the kernel keeps no BPF stats. */
export function readProgStats(cgroupDir: string): LbSnapshot["progs"] {
  const json = <T>(argv: string[]): T | undefined => {
    const r = spawnSync("bpftool", ["-j", ...argv], { encoding: "utf8", timeout: 5000 });
    try {
      return r.status === 0 ? (JSON.parse(r.stdout) as T) : undefined;
    } catch {
      return undefined;
    }
  };
  const out: LbSnapshot["progs"] = {};
  for (const a of json<{ id: number; attach_type: string; name?: string }[]>(["cgroup", "show", cgroupDir]) ?? []) {
    const p = json<{ name?: string; run_time_ns?: number; run_cnt?: number }>(["prog", "show", "id", String(a.id)]);
    if (p?.run_cnt === undefined || p.run_time_ns === undefined) continue;
    out[`${p.name ?? a.name ?? a.id} (${a.attach_type})`] = { runs: p.run_cnt, ns: p.run_time_ns };
  }
  return out;
}

export function readLbSnapshot(pinDir: string, vip: string, cgroupDir: string | undefined): LbSnapshot {
  const statsRaw = BpfMap.fromPin(join(pinDir, "maps", LbMapName.stats));
  const natRaw = BpfMap.fromPin(join(pinDir, "maps", LbMapName.nat));
  try {
    const stats = new TypedMap(statsRaw, lbStatsKeyCodec, lbStatsValueCodec);
    const nat = new TypedMap(natRaw, lbFlowKeyCodec, lbNatValueCodec);
    const backends: LbSnapshot["backends"] = {};
    for (const [k, v] of stats.entries()) {
      if (k.vip !== vip) continue;
      const b = (backends[k.backend] ??= { connects: 0, established: 0, failures: 0 });
      b.connects += Number(v.connects);
      b.established += Number(v.established);
      b.failures += Number(v.failures);
    }
    let tcNatFlows = 0;
    for (const [k] of nat.entries()) if (k.daddr === vip) tcNatFlows++;
    return { backends, tcNatFlows, progs: cgroupDir ? readProgStats(cgroupDir) : {} };
  } finally {
    statsRaw.close();
    natRaw.close();
  }
}

export function lbDelta(a: LbSnapshot, b: LbSnapshot): LbUse {
  const connects: Record<string, number> = {};
  let failures = 0;
  for (const [addr, v] of Object.entries(b.backends)) {
    connects[addr] = v.connects - (a.backends[addr]?.connects ?? 0);
    failures += v.failures - (a.backends[addr]?.failures ?? 0);
  }
  const progs: LbUse["progs"] = {};
  for (const [name, v] of Object.entries(b.progs)) {
    const runs = v.runs - (a.progs[name]?.runs ?? 0);
    progs[name] = { runs, nsPerRun: runs > 0 ? (v.ns - (a.progs[name]?.ns ?? 0)) / runs : 0 };
  }
  return { connects, failures, tcNatFlows: b.tcNatFlows, progs };
}
