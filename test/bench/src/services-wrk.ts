/**
 * The services benchmark's measurements and their report: wrk's output parsed (requests/s,
 * latency percentiles, errors), the cases side by side with their ratios, the JSON result
 * (`bench-results/services-<timestamp>.json` and `services-latest.json`). Pure except writeServicesResult.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Machine } from "./report.js";
import { table } from "./report.js";
import { median } from "./stats.js";

export const SERVICES_SCHEMA = "weft.bench.services/v1";

/** Keep-alive requests (a, b, c) and new connections (d, e). */
export const SERVICE_CASES = ["direct", "vip", "haproxy", "direct-new", "vip-new"] as const;
export type ServiceCase = (typeof SERVICE_CASES)[number];

export const CASE_LABELS: Record<ServiceCase, string> = {
  direct: "(a) direct to one backend's overlay address",
  vip: "(b) Weft VIP, balanced at connect in eBPF",
  haproxy: "(c) HAProxy in the client's namespace",
  "direct-new": "new connections, direct",
  "vip-new": "new connections, through the VIP",
};

export interface WrkResult {
  requestsPerSecond: number;
  requests: number;
  seconds: number;
  /** Latency percentiles in ms. */
  p50Ms: number;
  p75Ms: number;
  p90Ms: number;
  p99Ms: number;
  /** Socket errors (connect, read, write, timeout) and non-2xx/3xx responses. */
  errors: { connect: number; read: number; write: number; timeout: number; non2xx: number };
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

function durationMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m?.[1] || !m[2]) return NaN;
  return Number(m[1]) * (UNIT_MS[m[2]] ?? NaN);
}

/** Parses `wrk --latency` output; throws when the requests/s line is missing. */
export function parseWrk(out: string): WrkResult {
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(out)?.[1];
  if (rps === undefined) throw new Error(`not wrk --latency output: ${out.slice(0, 200)}`);
  const pct = (p: number) => durationMs(new RegExp(`^\\s+${p}%\\s+(\\S+)`, "m").exec(out)?.[1] ?? "");
  const done = /^\s+(\d+) requests in ([\d.]+)(us|ms|s|m)/m.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requestsPerSecond: Number(rps),
    requests: done?.[1] ? Number(done[1]) : NaN,
    seconds: done?.[2] && done[3] ? durationMs(`${done[2]}${done[3]}`) / 1000 : NaN,
    p50Ms: pct(50),
    p75Ms: pct(75),
    p90Ms: pct(90),
    p99Ms: pct(99),
    errors: {
      connect: Number(sock?.[1] ?? 0),
      read: Number(sock?.[2] ?? 0),
      write: Number(sock?.[3] ?? 0),
      timeout: Number(sock?.[4] ?? 0),
      non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    },
  };
}

export interface ServiceSample extends WrkResult {
  case: ServiceCase;
  round: number;
  target: string;
  startedAt: string;
  /** CPU seconds (user + system) the client-side HAProxy used during the measurement (case haproxy only). */
  proxyCpuSeconds?: number;
}

export interface ServiceSummary {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  perRound: number[];
  errors: number;
  /** Client-side proxy CPU per request, µs (HAProxy only: the VIP path runs no process). */
  proxyCpuUsPerRequest?: number;
}

export interface ServicesBenchResult {
  schema: typeof SERVICES_SCHEMA;
  date: string;
  durationMs: number;
  machine: Machine;
  settings: { prefix: string; client: string; backends: string[]; seconds: number; threads: number; connections: number; rounds: number; haproxy: string | null; wrk: string | null };
  /** What each case connected to. */
  targets: Record<ServiceCase, string>;
  /** Answers per backend over a check of each balanced case (round robin: a third each). */
  spread: Record<string, Record<string, number>>;
  samples: ServiceSample[];
  summary: Partial<Record<ServiceCase, ServiceSummary>>;
  /** The issue's targets: VIP p99 within 5 % of direct; VIP at least 2× HAProxy's requests/s. */
  checks: { vipP99OverDirect: number; vipRpsOverHaproxy: number; vipNewConnOverDirect: number; p99Within5Percent: boolean; twiceHaproxy: boolean };
}

export function summarize(samples: readonly ServiceSample[], c: ServiceCase): ServiceSummary | undefined {
  const mine = samples.filter((s) => s.case === c);
  if (mine.length === 0) return undefined;
  const cpu = mine.filter((s) => s.proxyCpuSeconds !== undefined && s.requests > 0).map((s) => ((s.proxyCpuSeconds ?? 0) / s.requests) * 1e6);
  return {
    ...(cpu.length > 0 ? { proxyCpuUsPerRequest: median(cpu) } : {}),
    requestsPerSecond: median(mine.map((s) => s.requestsPerSecond)),
    p50Ms: median(mine.map((s) => s.p50Ms)),
    p99Ms: median(mine.map((s) => s.p99Ms)),
    perRound: mine.map((s) => s.requestsPerSecond),
    errors: mine.reduce((a, s) => a + s.errors.connect + s.errors.read + s.errors.write + s.errors.timeout + s.errors.non2xx, 0),
  };
}

export function checksOf(summary: ServicesBenchResult["summary"]): ServicesBenchResult["checks"] {
  const r = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? a / b : NaN);
  const vipP99OverDirect = r(summary.vip?.p99Ms, summary.direct?.p99Ms);
  const vipRpsOverHaproxy = r(summary.vip?.requestsPerSecond, summary.haproxy?.requestsPerSecond);
  return {
    vipP99OverDirect,
    vipRpsOverHaproxy,
    vipNewConnOverDirect: r(summary["vip-new"]?.requestsPerSecond, summary["direct-new"]?.requestsPerSecond),
    p99Within5Percent: vipP99OverDirect <= 1.05,
    twiceHaproxy: vipRpsOverHaproxy >= 2,
  };
}

export async function writeServicesResult(dir: string, result: ServicesBenchResult): Promise<string> {
  await mkdir(dir, { recursive: true });
  const stamp = result.date.replace(/\.\d+Z$/, "Z").replace(/:/g, "-");
  const path = join(dir, `services-${stamp}.json`);
  const text = `${JSON.stringify(result, null, 2)}\n`;
  await writeFile(path, text);
  await writeFile(join(dir, "services-latest.json"), text);
  return path;
}

const n0 = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? "-" : Math.round(x).toLocaleString("en-US"));
const f2 = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(2));

export function formatServicesReport(r: ServicesBenchResult, jsonPath: string): string {
  const s = r.settings;
  const lines = [
    `Weft services benchmark  ${r.date}  (${r.machine.nproc} cores, kernel ${r.machine.kernel}, ${s.wrk ?? "wrk ?"}, HAProxy ${s.haproxy ?? "?"})`,
    `wrk -t${s.threads} -c${s.connections} -d${s.seconds}s from ${s.client} to an HTTP service with ${s.backends.length} backends (${s.backends.join(", ")}); ${s.rounds} round(s), rotating order, medians`,
    "",
    table(
      ["case", "target", "req/s", "per round", "p50 ms", "p99 ms", "errors", "proxy CPU µs/req"],
      SERVICE_CASES.filter((c) => r.summary[c]).map((c) => {
        const x = r.summary[c]!;
        return [CASE_LABELS[c], r.targets[c], n0(x.requestsPerSecond), x.perRound.map(n0).join(" / "), f2(x.p50Ms), f2(x.p99Ms), String(x.errors), x.proxyCpuUsPerRequest === undefined ? "-" : f2(x.proxyCpuUsPerRequest)];
      }),
      new Set([2, 4, 5, 6, 7]),
    ),
    "",
    `spread over the backends (check before measuring): ${Object.entries(r.spread).map(([c, t]) => `${c} ${JSON.stringify(t)}`).join("; ")}`,
    `VIP p99 / direct p99 = ${f2(r.checks.vipP99OverDirect)} (target ≤ 1.05: ${r.checks.p99Within5Percent ? "met" : "NOT met"}); VIP req/s / HAProxy req/s = ${f2(r.checks.vipRpsOverHaproxy)} (target ≥ 2: ${r.checks.twiceHaproxy ? "met" : "NOT met"}); new connections/s VIP / direct = ${f2(r.checks.vipNewConnOverDirect)}`,
    `result: ${jsonPath}`,
  ];
  return lines.join("\n");
}
