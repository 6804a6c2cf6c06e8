/**
 * Part 1 of the datapath benchmark: what policy enforcement costs on the WireGuard interface's
 * ingress of host B, for traffic from host A's overlay address to B's. Six cases:
 *
 *   none          nothing attached, no rule
 *   ebpf-0        weft_overlay_in attached; ipcache holds A and B; no policy, no default deny
 *   ebpf-1k/10k   weft_overlay_in; N policy entries (N − 2 fillers + the measured TCP and UDP
 *                 allows), default deny on B's identity, so every packet runs the full lookup
 *   iptables-1k/10k  no BPF; the same N rules as filter INPUT rules (`-i <wg>`, addresses,
 *                 proto/dport), the measured flow's ACCEPTs last, then DROP for the interface
 *
 * Each eBPF case has its own TcDatapath (own maps, pinned under the benchmark's bpffs), so
 * switching case is one `tc filter replace`; an iptables case is one `iptables-restore`.
 */
import { DropReason, TcAction, TcDatapath, ipv4Packet, testRun, type CountersValue, zeroCounters } from "@weft/bpf";
import { join } from "node:path";
import { BenchError } from "./errors.js";
import { tcpProbe, tcpThroughput, udpPacketRate } from "./datapath-iperf.js";
import { parseIptablesCounters, type UdpResult } from "./datapath-parse.js";
import { IPTABLES_EMPTY, policyRuleSet, type Flow, type RuleSet } from "./datapath-rules.js";
import { inNs, must } from "./datapath-sys.js";
import { attachPinned, attachedPrograms, BPFFS, detachAll, HOST_A, HOST_B } from "./datapath-topology.js";
import type { IperfResult } from "./parse.js";
import { median, ratio } from "./stats.js";

export const POLICY_CASES = ["none", "ebpf-0", "ebpf-1k", "ebpf-10k", "iptables-1k", "iptables-10k"] as const;
export type PolicyCase = (typeof POLICY_CASES)[number];

export interface PolicyCaseSpec {
  kind: "none" | "ebpf" | "iptables";
  rules: number;
}

export const POLICY_SPECS: Record<PolicyCase, PolicyCaseSpec> = {
  none: { kind: "none", rules: 0 },
  "ebpf-0": { kind: "ebpf", rules: 0 },
  "ebpf-1k": { kind: "ebpf", rules: 1000 },
  "ebpf-10k": { kind: "ebpf", rules: 10_000 },
  "iptables-1k": { kind: "iptables", rules: 1000 },
  "iptables-10k": { kind: "iptables", rules: 10_000 },
};

export const POLICY_LABELS: Record<PolicyCase, string> = {
  none: "none (nothing attached)",
  "ebpf-0": "eBPF, 0 rules",
  "ebpf-1k": "eBPF, 1,000 rules",
  "ebpf-10k": "eBPF, 10,000 rules",
  "iptables-1k": "iptables, 1,000 rules",
  "iptables-10k": "iptables, 10,000 rules",
};

/** The measured port (TCP and UDP) and a port no rule allows, for the drop probe. */
export const MEASURED_PORT = 5201;
export const DENIED_PORT = 5202;

const MEASURED: Flow[] = (["tcp", "udp"] as const).map((proto) => ({
  srcAddr: HOST_A.overlay,
  srcId: HOST_A.overlayId,
  dstAddr: HOST_B.overlay,
  dstId: HOST_B.overlayId,
  proto,
  dport: MEASURED_PORT,
}));

export interface PolicySettings {
  seconds: number;
  udpLength: number;
  /** Offered UDP datagrams per second; 0 = as fast as the sender can. */
  udpRate: number;
  signal?: AbortSignal;
}

export interface PolicySample {
  case: PolicyCase;
  round: number;
  position: number;
  startedAt: string;
  tcp: IperfResult;
  udp: UdpResult;
}

/** What the validation of one case saw: the measured flow passes, a flow no rule allows does (not). */
export interface PolicyCheck {
  case: PolicyCase;
  allowedProbe: { passed: boolean; detail: string };
  deniedProbe: { port: number; passed: boolean; expected: "pass" | "drop"; detail: string };
  /** eBPF: the measured pair's counters moved (packets), and default-deny drops counted for the probe. */
  ebpfCounters?: { packets: string; defaultDenyDrops: string };
  /** iptables: packets that reached the measured TCP ACCEPT (after every filler) and the final DROP. */
  iptablesCounters?: { measuredAccept: number; drop: number };
  /**
   * eBPF: weft_overlay_in's own cost per packet in the kernel's test mode (BPF_PROG_RUN, best of
   * 5 × 100,000 runs: the least disturbed by the rest of the machine) on a measured-flow TCP packet (allowed) and a denied-port one (dropped).
   */
  progRunNs?: { allow: number; deny: number };
  /** Time to put the case in place: tc filter replace, or iptables-restore of N rules. */
  applyMs: number;
}

export interface PolicySetup {
  /** Per eBPF rule count: time to fill the maps (ms) and entries per map. */
  ebpfFill: Record<string, { ms: number; ipcache: number; policy: number; defaultDeny: number }>;
}

export class PolicyBench {
  readonly #ruleSets = new Map<number, RuleSet>();
  readonly #datapaths = new Map<number, TcDatapath>();
  readonly #pinDirs = new Map<number, string>();
  readonly setup: PolicySetup = { ebpfFill: {} };

  /** Loads one TcDatapath per eBPF rule count and fills its maps; builds the iptables rule texts. */
  prepare(cases: readonly PolicyCase[]): void {
    for (const c of cases) {
      const spec = POLICY_SPECS[c];
      if (!this.#ruleSets.has(spec.rules)) this.#ruleSets.set(spec.rules, policyRuleSet({ rules: spec.rules, measured: MEASURED, iface: HOST_B.wg }));
      if (spec.kind !== "ebpf" || this.#datapaths.has(spec.rules)) continue;
      const pinDir = join(BPFFS, `policy-${spec.rules}`);
      const dp = TcDatapath.open({ pinDir });
      this.#datapaths.set(spec.rules, dp);
      this.#pinDirs.set(spec.rules, pinDir);
      const set = this.#ruleSets.get(spec.rules) as RuleSet;
      const t0 = performance.now();
      fill(dp.ipcache, set.ipcache);
      fill(dp.policy, set.policy);
      for (const id of set.defaultDeny) dp.policyDefault.set(id, { defaultDeny: true });
      this.setup.ebpfFill[String(spec.rules)] = { ms: performance.now() - t0, ipcache: set.ipcache.length, policy: set.policy.length, defaultDeny: set.defaultDeny.length };
    }
  }

  /** Puts case c in place on host B; returns how long that took (ms). */
  async apply(c: PolicyCase): Promise<number> {
    const spec = POLICY_SPECS[c];
    const t0 = performance.now();
    if (spec.kind !== "iptables") await iptablesRestore(IPTABLES_EMPTY);
    if (spec.kind !== "ebpf") await detachAll(HOST_B.ns, HOST_B.wg);
    if (spec.kind === "ebpf") {
      const pinDir = this.#pinDirs.get(spec.rules) as string;
      await attachPinned(HOST_B.ns, HOST_B.wg, "ingress", join(pinDir, "progs", "weft_overlay_in"));
    }
    if (spec.kind === "iptables") await iptablesRestore((this.#ruleSets.get(spec.rules) as RuleSet).iptables);
    const ms = performance.now() - t0;
    const progs = await attachedPrograms(HOST_B.ns, HOST_B.wg, "ingress");
    const want = spec.kind === "ebpf" ? ["weft_overlay_in"] : [];
    if (progs.length !== want.length || !progs.every((p, i) => p === want[i]?.slice(0, 15))) {
      throw new BenchError(`${c}: want ${want.join(", ") || "no program"} on ${HOST_B.wg} ingress, tc shows ${progs.join(", ") || "none"}`);
    }
    return ms;
  }

  /**
   * Applies c and checks it is not vacuous: the measured flow passes; a TCP flow to a port no
   * rule allows is dropped where there is policy (and passes where there is none); the eBPF
   * counters or the iptables rule counters show the packets went through the enforcement.
   */
  async validate(c: PolicyCase): Promise<PolicyCheck> {
    const spec = POLICY_SPECS[c];
    const applyMs = await this.apply(c);
    const dp = spec.kind === "ebpf" ? this.#datapaths.get(spec.rules) : undefined;
    const pair = () => (dp ? (dp.counters.get({ srcId: HOST_A.overlayId, dstId: HOST_B.overlayId }) ?? zeroCounters()) : undefined);
    const before = pair();
    const allowedProbe = await tcpProbe(HOST_A.ns, HOST_B.overlay, MEASURED_PORT);
    const afterAllowed = pair();
    const denied = await tcpProbe(HOST_A.ns, HOST_B.overlay, DENIED_PORT);
    const afterDenied = pair();
    const expected = spec.rules > 0 ? "drop" : "pass";
    const check: PolicyCheck = { case: c, allowedProbe, deniedProbe: { port: DENIED_PORT, passed: denied.passed, expected, detail: denied.detail }, applyMs };
    if (!allowedProbe.passed) throw new BenchError(`${c}: the measured flow ${HOST_A.overlay} → ${HOST_B.overlay}:${MEASURED_PORT} does not pass (${allowedProbe.detail})`);
    if (denied.passed !== (expected === "pass")) {
      throw new BenchError(`${c}: TCP to ${HOST_B.overlay}:${DENIED_PORT}, which no rule allows, ${denied.passed ? "passed" : "was dropped"}; want ${expected} (${denied.detail})`);
    }
    if (dp && before && afterAllowed && afterDenied) {
      const packets = afterAllowed.packets - before.packets;
      const dd = drops(afterDenied) - drops(afterAllowed);
      check.ebpfCounters = { packets: String(packets), defaultDenyDrops: String(dd) };
      if (packets <= 0n) throw new BenchError(`${c}: weft_overlay_in counted no packet of the measured flow (${HOST_A.overlayId} → ${HOST_B.overlayId})`);
      if (spec.rules > 0 && dd <= 0n) throw new BenchError(`${c}: weft_overlay_in counted no default-deny drop for the denied probe`);
      check.progRunNs = { allow: programCost(dp, MEASURED_PORT, TcAction.ok, c), deny: programCost(dp, DENIED_PORT, spec.rules > 0 ? TcAction.shot : TcAction.ok, c) };
    }
    if (spec.kind === "iptables") {
      const set = this.#ruleSets.get(spec.rules) as RuleSet;
      const counters = parseIptablesCounters(await must(inNs(HOST_B.ns, ["iptables", "-L", "INPUT", "-v", "-x", "-n", "--line-numbers"])));
      const acceptRule = set.filler.length + 1; // the measured TCP ACCEPT follows every filler
      const dropRule = set.filler.length + set.measured.length + 1;
      check.iptablesCounters = { measuredAccept: counters.get(acceptRule) ?? 0, drop: counters.get(dropRule) ?? 0 };
      if (check.iptablesCounters.measuredAccept <= 0) throw new BenchError(`${c}: no packet reached the measured ACCEPT (rule ${acceptRule})`);
      if (check.iptablesCounters.drop <= 0) throw new BenchError(`${c}: no packet reached the final DROP (rule ${dropRule})`);
    }
    return check;
  }

  /** TCP throughput, then UDP packet rate, A → B with case c in place. Zero results are errors. */
  async measure(c: PolicyCase, s: PolicySettings, round: number, position: number): Promise<PolicySample> {
    await this.apply(c);
    const startedAt = new Date().toISOString();
    const tcp = await tcpThroughput(HOST_A.ns, HOST_B.overlay, MEASURED_PORT, s.seconds, s.signal);
    const udp = await udpPacketRate(HOST_A.ns, HOST_B.overlay, MEASURED_PORT, s.seconds, s.udpLength, s.udpRate, s.signal);
    if (!(tcp.receivedBitsPerSecond > 0)) throw new BenchError(`${c}: TCP throughput is 0: the measured flow is not allowed`);
    if (!(udp.receivedPacketsPerSecond > 0)) throw new BenchError(`${c}: no UDP datagram arrived: the measured flow is not allowed`);
    return { case: c, round, position, startedAt, tcp, udp };
  }

  /** Closes the datapaths; what is pinned and attached goes with the bpffs and the namespaces (sweep). */
  async close(): Promise<void> {
    for (const dp of this.#datapaths.values()) dp.close();
    this.#datapaths.clear();
  }
}

/** Best-of-5 ns per run of weft_overlay_in on a 1420-byte TCP packet A → B:dport, checking its verdict. */
function programCost(dp: TcDatapath, dport: number, want: number, c: PolicyCase): number {
  const pkt = ipv4Packet({ src: HOST_A.overlay, dst: HOST_B.overlay, proto: "tcp", sport: 40_000, dport, payload: Buffer.alloc(1380) });
  const runs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = testRun(dp.progOverlayIn, pkt, { repeat: 100_000 });
    if (r.retval !== want) throw new BenchError(`${c}: BPF_PROG_RUN of weft_overlay_in on TCP to port ${dport}: retval ${r.retval}, want ${want}`);
    runs.push(r.durationNs);
  }
  return Math.min(...runs);
}

const drops = (v: CountersValue): bigint => v.drops[DropReason.defaultDeny] ?? 0n;

/** Batch update, or one by one where the map type has no batch update. */
function fill<K, V>(map: { setMany(e: readonly (readonly [K, V])[]): void; set(k: K, v: V): void }, entries: readonly (readonly [K, V])[]): void {
  if (entries.length === 0) return;
  try {
    map.setMany(entries);
  } catch {
    for (const [k, v] of entries) map.set(k, v);
  }
}

async function iptablesRestore(text: string): Promise<void> {
  await must(inNs(HOST_B.ns, ["iptables-restore"]), { input: text, timeoutMs: 120_000 });
}

export interface PolicySummary {
  rules: number;
  tcpMbps: number;
  tcpMbpsPerRound: number[];
  tcpRetransmitsPerRound: (number | null)[];
  udpKpps: number;
  udpKppsPerRound: number[];
  udpSentKppsPerRound: number[];
  /** (max − min) / median over rounds, for TCP and UDP. */
  tcpSpread: number;
  udpSpread: number;
}

export const spread = (xs: readonly number[]): number => (xs.length < 2 ? 0 : ratio(Math.max(...xs) - Math.min(...xs), median(xs)));

export function summarizePolicy(c: PolicyCase, samples: readonly PolicySample[]): PolicySummary {
  const mine = samples.filter((s) => s.case === c);
  const tcp = mine.map((s) => s.tcp.receivedBitsPerSecond / 1e6);
  const udp = mine.map((s) => s.udp.receivedPacketsPerSecond / 1e3);
  return {
    rules: POLICY_SPECS[c].rules,
    tcpMbps: median(tcp),
    tcpMbpsPerRound: tcp,
    tcpRetransmitsPerRound: mine.map((s) => s.tcp.retransmits),
    udpKpps: median(udp),
    udpKppsPerRound: udp,
    udpSentKppsPerRound: mine.map((s) => s.udp.sentPacketsPerSecond / 1e3),
    tcpSpread: spread(tcp),
    udpSpread: spread(udp),
  };
}
