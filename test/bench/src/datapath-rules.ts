/**
 * The policy rule sets the datapath benchmark compares, built once and expressed twice: as
 * entries of Weft's eBPF maps (ipcache, policy, policy default) and as the naive iptables
 * translation of the same rules (one ACCEPT per rule in filter INPUT, the measured flow's rules
 * last so every packet walks the whole list, then a DROP for the interface). Pure, unit-tested.
 */
import type { IpcacheKey, IpcacheValue, PolicyKey, PolicyValue } from "@weft/bpf";

export type Proto = "tcp" | "udp";
const PROTO_NUMBER: Record<Proto, number> = { tcp: 6, udp: 17 };

/** One allowed flow: source address and identity → destination address and identity, proto/port. */
export interface Flow {
  srcAddr: string;
  srcId: number;
  dstAddr: string;
  dstId: number;
  proto: Proto;
  dport: number;
}

export interface RuleSetOptions {
  /** Total rules, the measured flows' included (0 = no policy at all). */
  rules: number;
  /** The flows the benchmark measures; always allowed, placed last. */
  measured: readonly Flow[];
  /** Interface the iptables rules match (`-i`): the WireGuard interface. */
  iface: string;
}

export interface RuleSet {
  rules: number;
  /** Filler rules: other identity pairs and ports, never matching the measured traffic. */
  filler: Flow[];
  measured: Flow[];
  ipcache: [IpcacheKey, IpcacheValue][];
  policy: [PolicyKey, PolicyValue][];
  /** Destination identities with the default-deny flag (so unmatched traffic is dropped). */
  defaultDeny: number[];
  /** `iptables-restore` input for the filter table. */
  iptables: string;
}

/** First identity of the filler sources; theirs are FILLER_ID_BASE + i. */
export const FILLER_ID_BASE = 10_000;
/** Filler sources are 10.200.0.0/16 addresses (never used by the benchmark's traffic). */
const FILLER_NET = [10, 200] as const;
/** Filler destination ports cycle through FILLER_PORT_BASE .. +999. */
export const FILLER_PORT_BASE = 20_000;

/** The i-th filler source address: 10.200.<hi>.<lo>, skipping .0 and .255. */
export function fillerAddress(i: number): string {
  const host = 1 + i + 2 * Math.floor(i / 254); // 254 usable hosts per /24
  const third = Math.floor(host / 256);
  if (third > 255) throw new RangeError(`filler ${i}: more than 65,024 filler sources`);
  return `${FILLER_NET[0]}.${FILLER_NET[1]}.${third}.${host % 256}`;
}

/**
 * N rules: N − measured.length fillers (each its own source identity, to the measured
 * destination, TCP, a port the measured flows do not use), then the measured flows. With 0
 * rules the set is empty: no policy, no default deny (the ipcache still names the measured ends).
 */
export function policyRuleSet(o: RuleSetOptions): RuleSet {
  if (!Number.isInteger(o.rules) || o.rules < 0) throw new RangeError(`rules must be an integer ≥ 0, got ${o.rules}`);
  if (o.rules > 0 && o.rules < o.measured.length) throw new RangeError(`rules ${o.rules}: fewer than the ${o.measured.length} measured flows`);
  const first = o.measured[0];
  if (!first) throw new RangeError("at least one measured flow");
  const measuredPorts = new Set(o.measured.map((f) => f.dport));
  const filler: Flow[] = [];
  for (let i = 0; filler.length < Math.max(0, o.rules - o.measured.length); i++) {
    const dport = FILLER_PORT_BASE + (i % 1000);
    if (measuredPorts.has(dport)) continue;
    filler.push({ srcAddr: fillerAddress(filler.length), srcId: FILLER_ID_BASE + filler.length, dstAddr: first.dstAddr, dstId: first.dstId, proto: "tcp", dport });
  }
  const measured = o.rules === 0 ? [] : [...o.measured];
  const ends = new Map<string, number>();
  for (const f of o.measured) {
    ends.set(f.srcAddr, f.srcId);
    ends.set(f.dstAddr, f.dstId);
  }
  for (const f of filler) ends.set(f.srcAddr, f.srcId);
  const all = [...filler, ...measured];
  return {
    rules: o.rules,
    filler,
    measured,
    ipcache: [...ends].map(([addr, identity]) => [{ addr, prefixlen: 32 }, { identity }]),
    policy: all.map((f) => [{ srcId: f.srcId, dstId: f.dstId, proto: PROTO_NUMBER[f.proto], port: f.dport, portBits: 16 }, { verdict: "allow" }]),
    defaultDeny: o.rules === 0 ? [] : [...new Set(all.map((f) => f.dstId))],
    iptables: iptablesRestore(all, o.iface, o.rules > 0),
  };
}

/** The filter table for iptables-restore: one ACCEPT per flow in order, then DROP on the interface. */
export function iptablesRestore(flows: readonly Flow[], iface: string, dropRest: boolean): string {
  const lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"];
  for (const f of flows) lines.push(`-A INPUT -i ${iface} -s ${f.srcAddr}/32 -d ${f.dstAddr}/32 -p ${f.proto} -m ${f.proto} --dport ${f.dport} -j ACCEPT`);
  if (dropRest) lines.push(`-A INPUT -i ${iface} -j DROP`);
  lines.push("COMMIT", "");
  return lines.join("\n");
}

/** An empty filter table (every chain ACCEPT, no rule). */
export const IPTABLES_EMPTY = iptablesRestore([], "lo", false);
