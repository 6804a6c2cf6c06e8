/**
 * Parsers for the datapath benchmark's tools beyond the TCP ones in parse.ts: `iperf3 -u -J`
 * (received packets per second), `ip -s -j link` (interface byte counters) and the packet
 * counter of one iptables rule. Pure, so they are unit-tested without root.
 */
import { IperfReportedError } from "./parse.js";

export interface UdpResult {
  /** Datagrams the receiver got per second: (packets − lost) / seconds of the receiver. */
  receivedPacketsPerSecond: number;
  sentPacketsPerSecond: number;
  /** Datagrams sent, received and lost over the whole test. */
  sent: number;
  received: number;
  lost: number;
  seconds: number;
  datagramBytes: number;
}

interface UdpSum {
  seconds?: number;
  bytes?: number;
  packets?: number;
  lost_packets?: number;
}

/**
 * Parses `iperf3 -c … -u -l <len> -J` output. iperf3 3.12 reports in `end.sum_received` the
 * datagrams the server expected (`packets`, from sequence numbers) and those that never came
 * (`lost_packets`); what arrived is their difference, which is also `bytes / len`.
 */
export function parseIperfUdpJson(stdout: string): UdpResult {
  const doc = JSON.parse(stdout) as {
    error?: string;
    start?: { test_start?: { blksize?: number } };
    end?: { sum?: UdpSum; sum_sent?: UdpSum; sum_received?: UdpSum };
  };
  if (doc.error) throw new IperfReportedError(`iperf3: ${doc.error}`);
  const sent = doc.end?.sum_sent ?? doc.end?.sum;
  const recv = doc.end?.sum_received ?? doc.end?.sum;
  const len = doc.start?.test_start?.blksize;
  if (!sent || !recv || typeof sent.packets !== "number" || typeof recv.packets !== "number" || typeof recv.seconds !== "number" || typeof len !== "number") {
    throw new IperfReportedError("iperf3: no end.sum_sent/sum_received packets in its UDP JSON");
  }
  const lost = recv.lost_packets ?? 0;
  const received = Math.max(0, recv.packets - lost);
  return {
    receivedPacketsPerSecond: recv.seconds > 0 ? received / recv.seconds : 0,
    sentPacketsPerSecond: typeof sent.seconds === "number" && sent.seconds > 0 ? sent.packets / sent.seconds : 0,
    sent: sent.packets,
    received,
    lost,
    seconds: recv.seconds,
    datagramBytes: len,
  };
}

export interface LinkCounters {
  rxBytes: number;
  rxPackets: number;
  txBytes: number;
  txPackets: number;
}

/** Parses `ip -s -j link show dev X` (one link). */
export function parseLinkStats(stdout: string): LinkCounters {
  const links = JSON.parse(stdout) as { stats64?: { rx?: { bytes?: number; packets?: number }; tx?: { bytes?: number; packets?: number } } }[];
  const s = links[0]?.stats64;
  if (!s?.rx || !s.tx) throw new SyntaxError("ip -s -j link: no stats64");
  return { rxBytes: s.rx.bytes ?? 0, rxPackets: s.rx.packets ?? 0, txBytes: s.tx.bytes ?? 0, txPackets: s.tx.packets ?? 0 };
}

/** The ifindex from `ip -j link show dev X`. */
export function parseIfindex(stdout: string): number {
  const links = JSON.parse(stdout) as { ifindex?: number }[];
  const i = links[0]?.ifindex;
  if (typeof i !== "number") throw new SyntaxError("ip -j link: no ifindex");
  return i;
}

/**
 * Packet counters of a chain's rules from `iptables -L <chain> -v -x -n --line-numbers`, by rule
 * number (1-based). Lines that are not rules (the chain header, the column header) are skipped.
 */
export function parseIptablesCounters(stdout: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const line of stdout.split("\n")) {
    const m = /^\s*(\d+)\s+(\d+)\s+\d+\s/.exec(line);
    if (m) out.set(Number(m[1]), Number(m[2]));
  }
  return out;
}
