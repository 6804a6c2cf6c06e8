/**
 * Part 2 of the datapath benchmark: how workload traffic crosses between two hosts of one site.
 * Workload A (10.77.1.2) → workload B (10.77.2.2), TCP, three cases:
 *
 *   raw         plain routing: each host routes the other workload via the other host's underlay
 *               address; no encapsulation, no program
 *   vxlan-ebpf  Weft's same-site path: weft_from_workload on the workload veth's ingress encapsulates
 *               (bpf_skb_set_tunnel_key, source identity in the VNI) and redirects to the VXLAN
 *               collect_md device; weft_vxlan_in on that device's ingress checks the sender and
 *               enforces policy; weft_to_workload on the veth's egress. Routes point at WireGuard, as
 *               Weft's do: only the programs divert the traffic
 *   wireguard   routes via the wireguard-go interfaces, no program
 *
 * Every sample checks, from host B's interface counters, that the bytes went the intended way
 * (VXLAN device, WireGuard interface, or neither), so a silently wrong path cannot pass for a result.
 */
import { join } from "node:path";
import { TcDatapath, DropReason, zeroCounters } from "@weft/bpf";
import { BenchError } from "./errors.js";
import { tcpProbe, tcpThroughput } from "./datapath-iperf.js";
import type { LinkCounters } from "./datapath-parse.js";
import {
  attachPinned,
  attachedPrograms,
  BPFFS,
  detachAll,
  HOST_A,
  HOST_B,
  ifindexOf,
  linkCounters,
  routeWorkloads,
  VXLAN_DEV,
  WORKLOAD_DEV,
  type HostEnd,
} from "./datapath-topology.js";
import type { IperfResult } from "./parse.js";
import { median } from "./stats.js";
import { spread } from "./datapath-policy.js";

export const TRANSPORT_CASES = ["raw", "vxlan-ebpf", "wireguard"] as const;
export type TransportCase = (typeof TRANSPORT_CASES)[number];

export const TRANSPORT_LABELS: Record<TransportCase, string> = {
  raw: "raw (routed underlay, no encapsulation)",
  "vxlan-ebpf": "VXLAN by eBPF (Weft same-site)",
  wireguard: "WireGuard (wireguard-go)",
};

export const WORKLOAD_PORT = 5201;
export const WORKLOAD_DENIED_PORT = 5202;

/** Which of host B's devices must carry the bytes in each case. */
const CARRIER: Record<TransportCase, "underlay only" | "vxlan" | "wireguard"> = { raw: "underlay only", "vxlan-ebpf": "vxlan", wireguard: "wireguard" };

export interface PathCheck {
  /** Payload bytes iperf3 counted at the receiver. */
  payloadBytes: number;
  /** rx bytes on host B during the sample, per device. */
  underlayRxBytes: number;
  wireguardRxBytes: number;
  vxlanRxBytes: number;
  carrier: string;
}

export interface TransportSample {
  case: TransportCase;
  round: number;
  position: number;
  startedAt: string;
  tcp: IperfResult;
  path: PathCheck;
}

export interface TransportCheck {
  case: TransportCase;
  allowedProbe: { passed: boolean; detail: string };
  /** vxlan-ebpf: the measured pair counted on host B, and a port no rule allows dropped by weft_vxlan_in. */
  ebpf?: { pairPackets: string; deniedProbe: { port: number; passed: boolean; detail: string }; defaultDenyDrops: string };
}

export interface TransportSettings {
  seconds: number;
  signal?: AbortSignal;
}

const PROGS = { fromWorkload: "weft_from_workload", toWorkload: "weft_to_workload", vxlanIn: "weft_vxlan_in" } as const;

export class TransportBench {
  readonly #dp = new Map<HostEnd, { dp: TcDatapath; pinDir: string }>();

  /**
   * One TcDatapath per host, filled as Weft's agent would: ipcache (both workloads), policy
   * (A's workload may reach B's on the measured TCP port; B's identity default-deny), the
   * tunnel to the other host's workload prefix, the other host as tunnel peer, the workload
   * veth's endpoint (its one source address), the VXLAN ifindex.
   */
  async prepare(): Promise<void> {
    for (const [self, peer] of [
      [HOST_A, HOST_B],
      [HOST_B, HOST_A],
    ] as const) {
      const pinDir = join(BPFFS, `host-${self.ns}`);
      const dp = TcDatapath.open({ pinDir });
      this.#dp.set(self, { dp, pinDir });
      for (const h of [HOST_A, HOST_B]) dp.ipcache.set({ addr: h.workload, prefixlen: 32 }, { identity: h.workloadId });
      dp.policy.set({ srcId: HOST_A.workloadId, dstId: HOST_B.workloadId, proto: 6, port: WORKLOAD_PORT, portBits: 16 }, { verdict: "allow" });
      dp.policyDefault.set(HOST_B.workloadId, { defaultDeny: true });
      const [addr, len] = peer.workloadPrefix.split("/") as [string, string];
      dp.tunnels.set({ addr, prefixlen: Number(len) }, { remote: peer.underlay });
      dp.tunnelPeers.set(peer.underlay, {});
      // The workload veth's one allowed source (weft_from_workload drops anything else as spoofed).
      dp.endpoints.set(await ifindexOf(self.ns, WORKLOAD_DEV), { addr: self.workload, identity: self.workloadId });
      dp.setConfig({ vxlanIfindex: await ifindexOf(self.ns, VXLAN_DEV) });
    }
  }

  async apply(c: TransportCase): Promise<void> {
    await routeWorkloads(c === "raw" ? "underlay" : "wireguard");
    for (const h of [HOST_A, HOST_B]) {
      if (c !== "vxlan-ebpf") {
        await detachAll(h.ns, WORKLOAD_DEV);
        await detachAll(h.ns, VXLAN_DEV);
        continue;
      }
      const { pinDir } = this.#dp.get(h) as { pinDir: string };
      const prog = (name: string) => join(pinDir, "progs", name);
      await attachPinned(h.ns, WORKLOAD_DEV, "ingress", prog(PROGS.fromWorkload));
      await attachPinned(h.ns, WORKLOAD_DEV, "egress", prog(PROGS.toWorkload));
      await attachPinned(h.ns, VXLAN_DEV, "ingress", prog(PROGS.vxlanIn));
      const seen = [...(await attachedPrograms(h.ns, WORKLOAD_DEV, "ingress")), ...(await attachedPrograms(h.ns, WORKLOAD_DEV, "egress")), ...(await attachedPrograms(h.ns, VXLAN_DEV, "ingress"))];
      const want = [PROGS.fromWorkload, PROGS.toWorkload, PROGS.vxlanIn];
      if (!want.every((w, i) => seen[i] === w.slice(0, 15))) // the kernel keeps 15 characters of a program name
        throw new BenchError(`vxlan-ebpf on ${h.ns}: want ${want.join(", ")} attached, tc shows ${seen.join(", ")}`);
    }
  }

  /**
   * Applies c and probes the measured flow (1 s of TCP; also warms ARP and WireGuard). For
   * vxlan-ebpf also: weft_vxlan_in on host B counted the measured pair, and a port no rule
   * allows is dropped there by default deny.
   */
  async validate(c: TransportCase): Promise<TransportCheck> {
    await this.apply(c);
    const { dp } = this.#dp.get(HOST_B) as { dp: TcDatapath };
    const pair = () => (dp.counters.get({ srcId: HOST_A.workloadId, dstId: HOST_B.workloadId }) ?? zeroCounters());
    const before = pair();
    const allowed = await tcpProbe(HOST_A.workloadNs, HOST_B.workload, WORKLOAD_PORT);
    if (!allowed.passed) throw new BenchError(`${c}: workload ${HOST_A.workload} → ${HOST_B.workload}:${WORKLOAD_PORT} does not pass (${allowed.detail})`);
    const check: TransportCheck = { case: c, allowedProbe: allowed };
    if (c !== "vxlan-ebpf") return check;
    const mid = pair();
    const denied = await tcpProbe(HOST_A.workloadNs, HOST_B.workload, WORKLOAD_DENIED_PORT);
    const after = pair();
    const dd = (after.drops[DropReason.defaultDeny] ?? 0n) - (mid.drops[DropReason.defaultDeny] ?? 0n);
    check.ebpf = { pairPackets: String(mid.packets - before.packets), deniedProbe: { port: WORKLOAD_DENIED_PORT, passed: denied.passed, detail: denied.detail }, defaultDenyDrops: String(dd) };
    if (mid.packets <= before.packets) throw new BenchError("vxlan-ebpf: weft_vxlan_in on host B counted no packet of the measured flow");
    if (denied.passed || dd <= 0n) throw new BenchError(`vxlan-ebpf: TCP to ${HOST_B.workload}:${WORKLOAD_DENIED_PORT}, which no rule allows, was not dropped by weft_vxlan_in (${denied.detail}, ${dd} default-deny drops)`);
    return check;
  }

  async measure(c: TransportCase, s: TransportSettings, round: number, position: number): Promise<TransportSample> {
    await this.apply(c);
    const before = await countersOfB();
    const startedAt = new Date().toISOString();
    const tcp = await tcpThroughput(HOST_A.workloadNs, HOST_B.workload, WORKLOAD_PORT, s.seconds, s.signal);
    const after = await countersOfB();
    if (!(tcp.receivedBitsPerSecond > 0)) throw new BenchError(`${c}: TCP throughput between the workloads is 0`);
    const path: PathCheck = {
      payloadBytes: Math.round((tcp.receivedBitsPerSecond * tcp.seconds) / 8),
      underlayRxBytes: after.underlay.rxBytes - before.underlay.rxBytes,
      wireguardRxBytes: after.wg.rxBytes - before.wg.rxBytes,
      vxlanRxBytes: after.vxlan.rxBytes - before.vxlan.rxBytes,
      carrier: CARRIER[c],
    };
    checkPath(c, path);
    return { case: c, round, position, startedAt, tcp, path };
  }

  close(): void {
    for (const { dp } of this.#dp.values()) dp.close();
    this.#dp.clear();
  }
}

async function countersOfB(): Promise<{ underlay: LinkCounters; wg: LinkCounters; vxlan: LinkCounters }> {
  return { underlay: await linkCounters(HOST_B.ns, "ul0"), wg: await linkCounters(HOST_B.ns, HOST_B.wg), vxlan: await linkCounters(HOST_B.ns, VXLAN_DEV) };
}

/** The carrier device received at least half the payload; the other overlay device almost nothing. */
export function checkPath(c: TransportCase, p: PathCheck): void {
  const most = (n: number) => n >= 0.5 * p.payloadBytes;
  const little = (n: number) => n <= 0.01 * p.payloadBytes;
  const ok =
    c === "raw"
      ? most(p.underlayRxBytes) && little(p.wireguardRxBytes) && little(p.vxlanRxBytes)
      : c === "vxlan-ebpf"
        ? most(p.vxlanRxBytes) && little(p.wireguardRxBytes)
        : most(p.wireguardRxBytes) && little(p.vxlanRxBytes);
  if (!ok) {
    throw new BenchError(
      `${c}: the traffic did not take the ${CARRIER[c]} path: payload ${p.payloadBytes} B, host B received ${p.underlayRxBytes} B on the underlay, ${p.wireguardRxBytes} B on WireGuard, ${p.vxlanRxBytes} B on VXLAN`,
    );
  }
}

export interface TransportSummary {
  tcpMbps: number;
  tcpMbpsPerRound: number[];
  tcpRetransmitsPerRound: (number | null)[];
  tcpSpread: number;
}

export function summarizeTransport(c: TransportCase, samples: readonly TransportSample[]): TransportSummary {
  const mine = samples.filter((s) => s.case === c);
  const tcp = mine.map((s) => s.tcp.receivedBitsPerSecond / 1e6);
  return { tcpMbps: median(tcp), tcpMbpsPerRound: tcp, tcpRetransmitsPerRound: mine.map((s) => s.tcp.retransmits), tcpSpread: spread(tcp) };
}
