/**
 * The four ways from one host to another that the benchmark compares, measured in alternating
 * rounds so machine noise (other processes, CPU frequency, the two cores' scheduling) hits all
 * alike: the underlay through both NATs, the Weft overlay, and WireGuard configured by hand with
 * the current wireguard-go (what Weft runs and ships) and with Debian 12's (0.0.20220316).
 */
import type { LabOptions } from "@weft/lab";
import { measureLatency, measureThroughput } from "./measure.js";
import type { IperfResult, PingResult } from "./parse.js";
import { median, ratio, summarize, type Summary } from "./stats.js";

export type PathName = "underlay" | "weft" | "hand" | "handDebian";
export const PATH_NAMES: readonly PathName[] = ["underlay", "weft", "hand", "handDebian"];

export const PATH_LABELS: Record<PathName, string> = {
  underlay: "underlay (public addresses, both NATs)",
  weft: "Weft overlay (current wireguard-go)",
  hand: "hand-configured, current wireguard-go",
  handDebian: "hand-configured, Debian's wireguard-go",
};

export interface PathTarget {
  name: PathName;
  /** Address the sender connects to. */
  address: string;
  /** Address the receiver's iperf3 server binds (after DNAT, for the underlay) and its port. */
  bindAddress: string;
  port: number;
}

export interface MeasureSettings {
  from: string;
  seconds: number;
  pings: number;
  intervalS: number;
  /** Aborted on Ctrl-C: no retry after an interrupted measurement. */
  signal?: AbortSignal;
}

export interface PathSample {
  round: number;
  /** Position of this path within its round (0 = measured first). */
  position: number;
  startedAt: string;
  throughput: IperfResult;
  latency: PingResult & { summary: Summary };
}

/** Round r measures the paths rotated by r, so no path always goes first or last. */
export function roundOrder<T>(items: readonly T[], round: number): T[] {
  const k = round % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** Throughput, then latency (on an idle path), of one path. */
export async function measurePath(opts: LabOptions, s: MeasureSettings, p: PathTarget, round: number, position: number): Promise<PathSample> {
  const startedAt = new Date().toISOString();
  const throughput = await measureThroughput(opts, s.from, p.address, p.port, s.seconds, s.signal);
  const latency = await measureLatency(opts, s.from, p.address, s.pings, s.intervalS);
  return { round, position, startedAt, throughput, latency: { ...latency, summary: summarize(latency.samplesMs) } };
}

export interface PathSummary {
  /** Median over rounds of the receiver's TCP throughput, Mbit/s; plus each round's value. */
  throughputMbps: number;
  throughputMbpsPerRound: number[];
  retransmitsPerRound: (number | null)[];
  /** Median over rounds of each round's ping statistic, ms. */
  latencyMs: { min: number; avg: number; max: number; p50: number };
  pingsSent: number;
  pingsLost: number;
}

export function summarizePath(samples: readonly PathSample[]): PathSummary {
  const mbps = samples.map((s) => s.throughput.receivedBitsPerSecond / 1e6);
  const stat = (k: keyof Summary) => median(samples.map((s) => s.latency.summary[k]));
  const sent = samples.reduce((n, s) => n + s.latency.transmitted, 0);
  return {
    throughputMbps: median(mbps),
    throughputMbpsPerRound: mbps,
    retransmitsPerRound: samples.map((s) => s.throughput.retransmits),
    latencyMs: { min: stat("min"), avg: stat("avg"), max: stat("max"), p50: stat("p50") },
    pingsSent: sent,
    pingsLost: sent - samples.reduce((n, s) => n + s.latency.received, 0),
  };
}

export interface Ratio {
  /** a/b of the median throughputs: below 1 means a is slower. */
  throughput: number;
  /** a/b of the median p50 round-trip times: above 1 means a adds latency. */
  latencyP50: number;
  latencyAvg: number;
  /** a − b of the median p50 round-trip times, ms. */
  addedLatencyP50Ms: number;
}

export function compare(a: PathSummary, b: PathSummary): Ratio {
  return {
    throughput: ratio(a.throughputMbps, b.throughputMbps),
    latencyP50: ratio(a.latencyMs.p50, b.latencyMs.p50),
    latencyAvg: ratio(a.latencyMs.avg, b.latencyMs.avg),
    addedLatencyP50Ms: a.latencyMs.p50 - b.latencyMs.p50,
  };
}
