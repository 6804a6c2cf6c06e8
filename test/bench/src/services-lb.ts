/**
 * What the client node's load balancer did during one services-benchmark measurement, read from
 * its pinned maps (`<pinDir>/maps/weft_lb_stats`, `weft_lb_nat`): connections balanced per backend
 * on the VIP (both paths count them) and the flows the tc fallback NATs (weft_lb_nat entries).
 * With every client process in the agent's cgroup, the socket path balances all of them and the
 * tc fallback holds nothing: the bench checks that, so (b) measures connect-time balancing and
 * never per-packet NAT. readLbSnapshot reads; lbDelta is pure.
 */
import { join } from "node:path";
import { BpfMap, LbMapName, TypedMap, lbFlowKeyCodec, lbNatValueCodec, lbStatsKeyCodec, lbStatsValueCodec } from "@weft/bpf";

export interface LbSnapshot {
  /** backend address → connects, established, failures on the VIP. */
  backends: Record<string, { connects: number; established: number; failures: number }>;
  /** Flows in the tc fallback's NAT table to the VIP. */
  tcNatFlows: number;
}

export interface LbUse {
  /** New connections balanced to each backend during the measurement. */
  connects: Record<string, number>;
  failures: number;
  /** tc-fallback flows to the VIP at the end (0: every connection took the socket path). */
  tcNatFlows: number;
}

export function readLbSnapshot(pinDir: string, vip: string): LbSnapshot {
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
    return { backends, tcNatFlows };
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
  return { connects, failures, tcNatFlows: b.tcNatFlows };
}
