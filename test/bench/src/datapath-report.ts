/**
 * The datapath benchmark's result: the JSON document (`bench-results/datapath-<timestamp>.json`
 * and `datapath-latest.json`) with every raw sample and check, and the side-by-side tables
 * printed on stdout, with the ratios and the two targets (DESIGN.md "Performance").
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { POLICY_CASES, POLICY_LABELS, type PolicyCase, type PolicyCheck, type PolicySample, type PolicySetup, type PolicySummary } from "./datapath-policy.js";
import { TRANSPORT_CASES, TRANSPORT_LABELS, type TransportCase, type TransportCheck, type TransportSample, type TransportSummary } from "./datapath-transport.js";
import { table, type Machine } from "./report.js";
import { median, ratio } from "./stats.js";

export const DATAPATH_SCHEMA = "weft.bench.datapath/v1";

/** ebpf-10k keeps at least this share of ebpf-0's TCP throughput. */
export const POLICY_TARGET = 0.97;
/** vxlan-ebpf keeps at least this share of raw's TCP throughput. */
export const TRANSPORT_TARGET = 0.7;

export interface Target {
  what: string;
  /**
   * The median of the per-round ratios: each round measures both cases minutes apart, so pairing
   * them cancels the machine's slow drifts that dominate an unpaired ratio of medians.
   */
  value: number;
  /** The unpaired ratio of the two cases' medians, for comparison. */
  ofMedians: number;
  atLeast: number;
  met: boolean;
  /** The same ratio within each round (cases measured minutes apart share less noise). */
  perRound: number[];
  /** The larger round-to-round spread (±half the min–max range, relative) of the two cases compared. */
  noise: number;
  /** Policy only: how the program's own cost compares with the time a packet takes on the path. */
  programCost?: { ebpf0Ns: number; ebpf10kNs: number; pathNsPerPacket: number; addedShare: number; programShare: number };
}

export interface DatapathBenchResult {
  schema: typeof DATAPATH_SCHEMA;
  date: string;
  durationMs: number;
  machine: Machine & { iptables: string | null };
  settings: {
    rounds: number;
    seconds: number;
    udpLength: number;
    udpRate: number;
    wgMtu: number;
    workloadMtu: number;
    vxlanMtu: number;
    policyCases: PolicyCase[];
    transportCases: TransportCase[];
  };
  policy?: {
    setup: PolicySetup;
    checks: PolicyCheck[];
    samples: PolicySample[];
    summary: Partial<Record<PolicyCase, PolicySummary>>;
    /** Per case: TCP and UDP median ratios to `none` and to `ebpf-0`. */
    ratios: Partial<Record<PolicyCase, { tcpVsNone: number; udpVsNone: number; tcpVsEbpf0: number; udpVsEbpf0: number }>>;
    target?: Target;
  };
  transport?: {
    checks: TransportCheck[];
    samples: TransportSample[];
    summary: Partial<Record<TransportCase, TransportSummary>>;
    ratios: Partial<Record<TransportCase, { tcpVsRaw: number }>>;
    target?: Target;
  };
}

export function policyRatios(summary: Partial<Record<PolicyCase, PolicySummary>>): NonNullable<DatapathBenchResult["policy"]>["ratios"] {
  const out: NonNullable<DatapathBenchResult["policy"]>["ratios"] = {};
  const none = summary.none;
  const e0 = summary["ebpf-0"];
  for (const c of POLICY_CASES) {
    const s = summary[c];
    if (!s) continue;
    out[c] = {
      tcpVsNone: ratio(s.tcpMbps, none?.tcpMbps ?? Number.NaN),
      udpVsNone: ratio(s.udpKpps, none?.udpKpps ?? Number.NaN),
      tcpVsEbpf0: ratio(s.tcpMbps, e0?.tcpMbps ?? Number.NaN),
      udpVsEbpf0: ratio(s.udpKpps, e0?.udpKpps ?? Number.NaN),
    };
  }
  return out;
}

type Compared = { tcpMbps: number; tcpMbpsPerRound: number[]; tcpSpread: number };

export function makeTarget(what: string, a: Compared, b: Compared, atLeast: number): Target {
  const perRound = a.tcpMbpsPerRound.map((x, i) => ratio(x, b.tcpMbpsPerRound[i] ?? Number.NaN));
  const paired = perRound.filter(Number.isFinite);
  const ofMedians = ratio(a.tcpMbps, b.tcpMbps);
  const value = paired.length > 0 ? median(paired) : ofMedians;
  return {
    what,
    value,
    ofMedians,
    atLeast,
    met: Number.isFinite(value) && value >= atLeast,
    perRound,
    noise: Math.max(a.tcpSpread, b.tcpSpread) / 2,
  };
}

/**
 * The policy target's second opinion, free of machine noise: weft_overlay_in's BPF_PROG_RUN cost
 * with 10k and 0 rules against the time one packet takes on the measured path (1 / UDP packet rate).
 */
export function programCost(checks: readonly PolicyCheck[], summary: Partial<Record<PolicyCase, PolicySummary>>): Target["programCost"] {
  const e0 = checks.find((k) => k.case === "ebpf-0")?.progRunNs;
  const e10k = checks.find((k) => k.case === "ebpf-10k")?.progRunNs;
  const pps = (summary["ebpf-0"]?.udpKpps ?? Number.NaN) * 1e3;
  if (!e0 || !e10k || !(pps > 0)) return undefined;
  const pathNsPerPacket = 1e9 / pps;
  return { ebpf0Ns: e0.allow, ebpf10kNs: e10k.allow, pathNsPerPacket, addedShare: (e10k.allow - e0.allow) / pathNsPerPacket, programShare: e10k.allow / pathNsPerPacket };
}

/** Writes `datapath-<timestamp>.json` and `datapath-latest.json`; returns the first path. */
export async function writeDatapathResult(dir: string, result: DatapathBenchResult): Promise<string> {
  await mkdir(dir, { recursive: true });
  const stamp = result.date.replace(/\.\d+Z$/, "Z").replace(/:/g, "-");
  const path = join(dir, `datapath-${stamp}.json`);
  const text = `${JSON.stringify(result, null, 2)}\n`;
  await writeFile(path, text);
  await writeFile(join(dir, "datapath-latest.json"), text);
  return path;
}

const f = (x: number, digits: number): string => (Number.isFinite(x) ? x.toFixed(digits) : "-");
const int = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "-");
const pct = (x: number): string => (Number.isFinite(x) ? `±${((x * 100) / 2).toFixed(1)}%` : "-");
function targetLines(t: Target): string[] {
  const finite = t.perRound.filter(Number.isFinite);
  const withinNoise = !t.met && Math.abs(1 - t.value) <= t.noise;
  const out = [
    `target: ${t.what} = ${f(t.value, 3)}, the median of the ratio within each round (want ≥ ${f(t.atLeast, 2)}): ${t.met ? "MET" : "NOT MET"}` +
      (withinNoise ? ` — the gap is within the round-to-round noise of these cases (${pct(t.noise * 2)})` : "") +
      (finite.length > 1 ? `; round by round: ${finite.map((x) => f(x, 2)).join(" / ")}; ratio of the medians ${f(t.ofMedians, 3)}` : ""),
  ];
  const c = t.programCost;
  if (c) {
    out.push(
      `  program cost: weft_overlay_in takes ${f(c.ebpf10kNs, 0)} ns per packet with 10k rules, ${f(c.ebpf0Ns, 0)} ns with 0 (BPF_PROG_RUN); ` +
        `a packet takes ${f(c.pathNsPerPacket / 1000, 1)} µs on this path (1 / UDP rate), so the program is ${f(c.programShare * 100, 2)} % of it and the 10k rules add ${f(c.addedShare * 100, 2)} %`,
    );
  }
  return out;
}

/** The human-readable summary printed on stdout. */
export function formatDatapathReport(r: DatapathBenchResult, jsonPath: string): string {
  const s = r.settings;
  const m = r.machine;
  const lines: string[] = [
    `Weft datapath benchmark  ${r.date}  (${m.nproc} cores, kernel ${m.kernel}, wireguard-go ${m.wireguardGo ?? "?"}, ${m.iptables ?? "iptables ?"})`,
    `${s.rounds} rounds, cases in rotating order; iperf3 ${s.seconds} s per measurement; medians over rounds, spread = ±half the min–max range`,
    "",
  ];
  if (r.policy) {
    const p = r.policy;
    lines.push(
      `1. Policy on host B's WireGuard ingress (wireguard-go, MTU ${s.wgMtu}), ${"100.64.0.1"} → 100.64.0.2: TCP one stream; UDP ${s.udpLength}-byte datagrams (-b 0), received`,
      "",
      table(
        ["case", "TCP Mbit/s", "spread", "vs none", "vs ebpf-0", "UDP kpps", "spread", "vs none", "vs ebpf-0", "denied probe"],
        POLICY_CASES.filter((c) => p.summary[c]).map((c) => {
          const x = p.summary[c] as PolicySummary;
          const q = p.ratios[c];
          const chk = p.checks.find((k) => k.case === c);
          return [
            POLICY_LABELS[c],
            int(x.tcpMbps),
            pct(x.tcpSpread),
            f(q?.tcpVsNone ?? Number.NaN, 3),
            f(q?.tcpVsEbpf0 ?? Number.NaN, 3),
            f(x.udpKpps, 1),
            pct(x.udpSpread),
            f(q?.udpVsNone ?? Number.NaN, 3),
            f(q?.udpVsEbpf0 ?? Number.NaN, 3),
            chk ? `${chk.deniedProbe.passed ? "passed" : "dropped"}${chk.deniedProbe.expected === "drop" ? "" : " (no policy)"}` : "-",
          ];
        }),
        new Set([1, 2, 3, 4, 5, 6, 7, 8]),
      ),
      "",
      "per round (TCP Mbit/s | UDP kpps):",
      ...POLICY_CASES.filter((c) => p.summary[c]).map((c) => {
        const x = p.summary[c] as PolicySummary;
        return `  ${c.padEnd(13)} ${x.tcpMbpsPerRound.map(int).join(" / ")}  |  ${x.udpKppsPerRound.map((v) => f(v, 1)).join(" / ")}`;
      }),
    );
    const fills = Object.entries(p.setup.ebpfFill).filter(([n]) => n !== "0");
    const restores = p.checks.filter((k) => k.case.startsWith("iptables"));
    if (fills.length > 0 || restores.length > 0) {
      lines.push(
        `loading the rules: ${[
          ...fills.map(([n, v]) => `eBPF maps ${int(Number(n))} entries ${f(v.ms, 0)} ms`),
          ...restores.map((k) => `iptables-restore ${k.case.replace("iptables-", "")} ${f(k.applyMs, 0)} ms`),
        ].join(", ")}`,
      );
    }
    const costs = p.checks.filter((k) => k.progRunNs);
    if (costs.length > 0) {
      lines.push(`weft_overlay_in per packet in the kernel's test mode (BPF_PROG_RUN, best of 5 × 100k runs, allowed | denied): ${costs.map((k) => `${k.case} ${f(k.progRunNs?.allow ?? Number.NaN, 0)} | ${f(k.progRunNs?.deny ?? Number.NaN, 0)} ns`).join(", ")}`);
    }
    if (p.target) lines.push(...targetLines(p.target));
    lines.push("");
  }
  if (r.transport) {
    const t = r.transport;
    lines.push(
      `2. Same-site workload → workload (10.77.1.2 → 10.77.2.2, workload MTU ${s.workloadMtu}, VXLAN device MTU ${s.vxlanMtu}): TCP one stream`,
      "",
      table(
        ["transport", "TCP Mbit/s", "spread", "vs raw", "per round", "bytes seen on B by"],
        TRANSPORT_CASES.filter((c) => t.summary[c]).map((c) => {
          const x = t.summary[c] as TransportSummary;
          return [TRANSPORT_LABELS[c], int(x.tcpMbps), pct(x.tcpSpread), f(t.ratios[c]?.tcpVsRaw ?? Number.NaN, 3), x.tcpMbpsPerRound.map(int).join(" / "), t.samples.find((z) => z.case === c)?.path.carrier ?? "-"];
        }),
        new Set([1, 2, 3]),
      ),
    );
    const e = t.checks.find((k) => k.ebpf)?.ebpf;
    if (e) lines.push(`vxlan-ebpf checks: weft_vxlan_in on B counted the measured pair (${e.pairPackets} packets in a 1 s probe); TCP to port ${e.deniedProbe.port}, which no rule allows, dropped (${e.defaultDenyDrops} default-deny drops)`);
    if (t.target) lines.push(...targetLines(t.target));
    lines.push("");
  }
  lines.push(`results: ${jsonPath}`);
  return lines.join("\n");
}
