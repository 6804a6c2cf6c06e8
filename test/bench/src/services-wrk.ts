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
import type { CpuUse } from "./services-cpu.js";
import type { LbUse } from "./services-lb.js";

export const SERVICES_SCHEMA = "weft.bench.services/v2";

/**
 * The measured cases: keep-alive requests (a, b, c) and new connections, each both ways. (a) and
 * "direct-new" spread wrk's threads over the three backends (thread i → backend i mod 3), the
 * same mix the VIP's round robin gives, so (a) vs (b) isolates the VIP. "direct-again" is (a)
 * measured a second time in each round: the A/A control, whose ratio to (a) is the noise floor of
 * every paired ratio on this machine.
 */
export const SERVICE_CASES = ["direct", "vip", "haproxy", "direct-new", "vip-new", "direct-again"] as const;
export type MainCase = (typeof SERVICE_CASES)[number];
/** A main case, or a diagnostic one: keep-alive requests straight to one backend (`direct:aws-1`). */
export type ServiceCase = MainCase | `direct:${string}`;

export const CASE_LABELS: Record<MainCase, string> = {
  direct: "(a) direct to the backends, same mix",
  vip: "(b) Weft VIP, balanced at connect in eBPF",
  haproxy: "(c) HAProxy in the client's namespace",
  "direct-new": "new connections, direct (same mix)",
  "vip-new": "new connections, through the VIP",
  "direct-again": "(a) again: A/A control, the noise floor",
};

/**
 * The order of the cases in round r: rounds come in pairs, the second the first reversed, and
 * each pair rotated by one more (r = 0: A B C, 1: C B A, 2: B C A, 3: A C B, …). Rotation alone
 * keeps every case right after the same neighbour in every round; reversal puts it before it too,
 * and a drift over the run (the machine getting busier) hits both sides of every pair alike.
 */
export function balancedOrder<T>(items: readonly T[], round: number): T[] {
  const k = Math.floor(round / 2) % Math.max(1, items.length);
  const rotated = [...items.slice(k), ...items.slice(0, k)];
  return round % 2 === 0 ? rotated : rotated.reverse();
}

export const caseLabel = (c: ServiceCase): string => (c.startsWith("direct:") ? `direct to ${c.slice("direct:".length)} only` : CASE_LABELS[c as MainCase]);
export const isNewConnectionCase = (c: ServiceCase): boolean => c.endsWith("-new");
/** Cases that run wrk with the direct-mix script (one thread per backend). */
export const isDirectMixCase = (c: ServiceCase): boolean => c === "direct" || c === "direct-new" || c === "direct-again";

/**
 * A wrk script that sends each thread to one backend in turn (thread i → backends[i mod n]), so
 * `-t n·k -c m` opens m/n connections to each backend: the same mix round robin gives the VIP.
 */
export function wrkMixScript(backends: readonly { address: string; port: number }[]): string {
  if (backends.length === 0) throw new Error("wrkMixScript: no backends");
  for (const b of backends) {
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(b.address) || !Number.isInteger(b.port)) throw new Error(`wrkMixScript: not an IPv4 address and port: ${JSON.stringify(b)}`);
  }
  return [
    "-- weft services bench: wrk thread i connects to backend i mod n (the VIP's round-robin mix)",
    `local backends = { ${backends.map((b) => `{ "${b.address}", "${b.port}" }`).join(", ")} }`,
    "local n = 0",
    "function setup(thread)",
    "  n = n + 1",
    "  local b = backends[(n - 1) % #backends + 1]",
    "  thread.addr = wrk.lookup(b[1], b[2])[1]",
    "end",
    "",
  ].join("\n");
}

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
  /** Position of the case within its round (0 = first). */
  position: number;
  target: string;
  startedAt: string;
  /** CPU seconds (user + system) the client-side HAProxy used during the measurement (case haproxy only). */
  proxyCpuSeconds?: number;
  /** Where the machine's CPU went during the measurement (services-cpu.ts). */
  cpu?: CpuUse;
  /** What the client's load balancer did (VIP cases): connects per backend, tc-fallback flows. */
  lb?: LbUse;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export interface ServiceSummary {
  requestsPerSecond: Spread;
  p50Ms: Spread;
  p99Ms: Spread;
  perRound: { requestsPerSecond: number; p99Ms: number }[];
  errors: number;
  /** Client-side proxy CPU per request, µs (HAProxy only: the VIP path runs no process). */
  proxyCpuUsPerRequest?: number;
  /** Medians over the rounds of the machine's busy share and CPU-seconds per wall second by consumer. */
  cpu?: { machineBusy: number; pressureSome: number | undefined; perSecond: Record<string, number> };
}

/** A ratio computed within each round (both cases measured minutes apart at most), then its median and range. */
export interface PairedRatio extends Spread {
  perRound: number[];
}

export interface ServicesBenchResult {
  schema: typeof SERVICES_SCHEMA;
  date: string;
  durationMs: number;
  machine: Machine;
  settings: {
    prefix: string;
    client: string;
    backends: string[];
    seconds: number;
    warmupSeconds: number;
    threads: number;
    connections: number;
    rounds: number;
    /** taskset CPU list wrk ran on, or null (unpinned). */
    wrkCpus: string | null;
    perBackend: boolean;
    haproxy: string | null;
    wrk: string | null;
  };
  /** What each case connected to. */
  targets: Partial<Record<ServiceCase, string>>;
  /** Answers per backend over a check of each balanced case (round robin: a third each). */
  spread: Record<string, Record<string, number>>;
  samples: ServiceSample[];
  summary: Partial<Record<ServiceCase, ServiceSummary>>;
  /** The issue's targets, from ratios paired within each round: VIP p99 within 5 % of direct; VIP at least 2× HAProxy's requests/s. */
  checks: {
    vipP99OverDirect: PairedRatio;
    vipRpsOverDirect: PairedRatio;
    vipRpsOverHaproxy: PairedRatio;
    vipNewConnOverDirect: PairedRatio;
    /** The A/A control: (a) measured twice in each round. Its spread is what a paired ratio can resolve here. */
    directAgainP99OverDirect: PairedRatio;
    directAgainRpsOverDirect: PairedRatio;
    p99Within5Percent: boolean;
    twiceHaproxy: boolean;
    /**
     * Whether this run can tell 5 % on p99 at all: every round's A/A p99 ratio within 0.95–1.05.
     * When it is false, "met" or "NOT met" on the p99 target is within the noise.
     */
    p99TargetResolvable: boolean;
  };
}

const spreadOf = (xs: readonly number[]): Spread => (xs.length === 0 ? { median: NaN, min: NaN, max: NaN } : { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });

export function summarize(samples: readonly ServiceSample[], c: ServiceCase): ServiceSummary | undefined {
  const mine = samples.filter((s) => s.case === c).sort((a, b) => a.round - b.round);
  if (mine.length === 0) return undefined;
  const proxy = mine.filter((s) => s.proxyCpuSeconds !== undefined && s.requests > 0).map((s) => ((s.proxyCpuSeconds ?? 0) / s.requests) * 1e6);
  const withCpu = mine.map((s) => s.cpu).filter((x): x is CpuUse => x !== undefined && x.seconds > 0);
  let cpu: ServiceSummary["cpu"];
  if (withCpu.length > 0) {
    const perSecond: Record<string, number> = {};
    const names = new Set(withCpu.flatMap((u) => [...Object.keys(u.cgroups), ...Object.keys(u.groups), "irq", "other"]));
    const of = (u: CpuUse, name: string) => (name === "other" ? u.other : name === "irq" ? u.irq : (u.cgroups[name] ?? u.groups[name] ?? 0));
    for (const name of names) perSecond[name] = median(withCpu.map((u) => of(u, name) / u.seconds));
    const pressures = withCpu.map((u) => u.pressureSome).filter((x): x is number => x !== undefined);
    cpu = { machineBusy: median(withCpu.map((u) => u.machineBusy)), pressureSome: pressures.length > 0 ? median(pressures) : undefined, perSecond };
  }
  return {
    ...(proxy.length > 0 ? { proxyCpuUsPerRequest: median(proxy) } : {}),
    ...(cpu ? { cpu } : {}),
    requestsPerSecond: spreadOf(mine.map((s) => s.requestsPerSecond)),
    p50Ms: spreadOf(mine.map((s) => s.p50Ms)),
    p99Ms: spreadOf(mine.map((s) => s.p99Ms)),
    perRound: mine.map((s) => ({ requestsPerSecond: s.requestsPerSecond, p99Ms: s.p99Ms })),
    errors: mine.reduce((a, s) => a + s.errors.connect + s.errors.read + s.errors.write + s.errors.timeout + s.errors.non2xx, 0),
  };
}

/** `field(a) / field(b)` in every round both cases were measured in; its median and range. */
export function pairedRatio(samples: readonly ServiceSample[], a: ServiceCase, b: ServiceCase, field: "requestsPerSecond" | "p99Ms"): PairedRatio {
  const perRound: number[] = [];
  const rounds = [...new Set(samples.map((s) => s.round))].sort((x, y) => x - y);
  for (const r of rounds) {
    const x = samples.find((s) => s.round === r && s.case === a)?.[field];
    const y = samples.find((s) => s.round === r && s.case === b)?.[field];
    if (x !== undefined && y !== undefined && Number.isFinite(x) && Number.isFinite(y) && y > 0) perRound.push(x / y);
  }
  return { ...spreadOf(perRound), perRound };
}

export function checksOf(samples: readonly ServiceSample[]): ServicesBenchResult["checks"] {
  const vipP99OverDirect = pairedRatio(samples, "vip", "direct", "p99Ms");
  const vipRpsOverHaproxy = pairedRatio(samples, "vip", "haproxy", "requestsPerSecond");
  const aa = pairedRatio(samples, "direct-again", "direct", "p99Ms");
  return {
    vipP99OverDirect,
    vipRpsOverDirect: pairedRatio(samples, "vip", "direct", "requestsPerSecond"),
    vipRpsOverHaproxy,
    vipNewConnOverDirect: pairedRatio(samples, "vip-new", "direct-new", "requestsPerSecond"),
    directAgainP99OverDirect: aa,
    directAgainRpsOverDirect: pairedRatio(samples, "direct-again", "direct", "requestsPerSecond"),
    p99Within5Percent: vipP99OverDirect.median <= 1.05,
    twiceHaproxy: vipRpsOverHaproxy.median >= 2,
    p99TargetResolvable: aa.perRound.length > 0 && aa.min >= 0.95 && aa.max <= 1.05,
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
const range = (s: Spread, f: (x: number) => string) => `${f(s.min)}–${f(s.max)}`;
const ratioText = (r: PairedRatio) => `${f2(r.median)} (rounds ${r.perRound.map(f2).join(" ") || "-"})`;

/** Connects per backend and tc-fallback flows over a case's samples. */
function lbText(samples: readonly ServiceSample[], c: ServiceCase): string {
  const mine = samples.filter((s) => s.case === c && s.lb);
  if (mine.length === 0) return "-";
  const per: Record<string, number> = {};
  for (const s of mine) for (const [b, n] of Object.entries(s.lb!.connects)) per[b] = (per[b] ?? 0) + n;
  const tc = Math.max(...mine.map((s) => s.lb!.tcNatFlows));
  const failures = mine.reduce((a, s) => a + s.lb!.failures, 0);
  return `${Object.entries(per).map(([b, n]) => `${b} ${n.toLocaleString("en-US")}`).join(", ")} (failures ${failures}; tc-fallback flows ${tc})`;
}

/** Per case: runs per measurement and mean ns per run of each program on the client's cgroup (only when the kernel kept BPF stats). */
function progLines(samples: readonly ServiceSample[], cases: readonly ServiceCase[]): string[] {
  const rows: string[] = [];
  for (const c of cases) {
    const mine = samples.filter((s) => s.case === c && s.lb && Object.keys(s.lb.progs).length > 0);
    if (mine.length === 0) continue;
    const names = [...new Set(mine.flatMap((s) => Object.keys(s.lb!.progs)))].sort();
    const cells = names.map((n) => {
      const runs = median(mine.map((s) => s.lb!.progs[n]?.runs ?? 0));
      const ran = mine.filter((s) => (s.lb!.progs[n]?.runs ?? 0) > 0);
      return `${n.replace(/^weft_sock_/, "")} ${n0(runs)} runs${ran.length > 0 ? ` × ${n0(median(ran.map((s) => s.lb!.progs[n]!.nsPerRun)))} ns` : ""}`;
    });
    rows.push(`  ${caseLabel(c)}: ${cells.join(", ")}`);
  }
  return rows.length === 0 ? [] : ["eBPF on the client's cgroup per measurement (median runs × mean ns per run; kernel.bpf_stats_enabled was on):", ...rows];
}

/** Case order in the report: the main cases, then the per-backend diagnostics. */
export function reportCases(summary: ServicesBenchResult["summary"]): ServiceCase[] {
  const diag = Object.keys(summary).filter((c) => c.startsWith("direct:")) as ServiceCase[];
  return [...SERVICE_CASES.filter((c) => summary[c]), ...diag.sort()];
}

export function formatServicesReport(r: ServicesBenchResult, jsonPath: string): string {
  const s = r.settings;
  const cases = reportCases(r.summary);
  const consumers = [...new Set(cases.flatMap((c) => Object.keys(r.summary[c]?.cpu?.perSecond ?? {})))];
  const c = r.checks;
  const lines = [
    `Weft services benchmark  ${r.date}  (${r.machine.nproc} cores, kernel ${r.machine.kernel}, ${s.wrk ?? "wrk ?"}, HAProxy ${s.haproxy ?? "?"})`,
    `wrk -t${s.threads} -c${s.connections} -d${s.seconds}s${s.wrkCpus ? ` (taskset -c ${s.wrkCpus})` : ""} from ${s.client} to an HTTP service with ${s.backends.length} backends (${s.backends.join(", ")}); ` +
      `${s.warmupSeconds} s warm-up of each case, then ${s.rounds} rounds, cases interleaved (rotating, every other round reversed); medians, min–max over rounds`,
    "",
    table(
      ["case", "req/s", "req/s min–max", "p50 ms", "p99 ms", "p99 min–max", "errors", "proxy CPU µs/req"],
      cases.map((k) => {
        const x = r.summary[k]!;
        return [caseLabel(k), n0(x.requestsPerSecond.median), range(x.requestsPerSecond, n0), f2(x.p50Ms.median), f2(x.p99Ms.median), range(x.p99Ms, f2), String(x.errors), x.proxyCpuUsPerRequest === undefined ? "-" : f2(x.proxyCpuUsPerRequest)];
      }),
      new Set([1, 2, 3, 4, 5, 6, 7]),
    ),
    "",
    "CPU during each case (medians; CPU-seconds per second, 1.00 = one core busy):",
    table(
      ["case", "machine busy", "CPU pressure", ...consumers],
      cases.map((k) => {
        const x = r.summary[k]?.cpu;
        return [caseLabel(k), x ? `${Math.round(x.machineBusy * 100)} %` : "-", f2(x?.pressureSome), ...consumers.map((n) => f2(x?.perSecond[n]))];
      }),
      new Set(Array.from({ length: consumers.length + 2 }, (_, i) => i + 1)),
    ),
    "",
    `targets (ratios within each round, then their median): VIP p99 / direct p99 = ${ratioText(c.vipP99OverDirect)}: ≤ 1.05 ${c.p99Within5Percent ? "met" : "NOT met"}` +
      `${c.p99TargetResolvable ? "" : " (within the noise: the A/A ratio below leaves 0.95–1.05)"}; ` +
      `VIP req/s / HAProxy req/s = ${ratioText(c.vipRpsOverHaproxy)}: ≥ 2 ${c.twiceHaproxy ? "met" : "NOT met"}`,
    `VIP req/s / direct req/s = ${ratioText(c.vipRpsOverDirect)}; new connections/s VIP / direct = ${ratioText(c.vipNewConnOverDirect)}`,
    `noise floor (A/A: direct measured twice per round): p99 ratio ${ratioText(c.directAgainP99OverDirect)}; req/s ratio ${ratioText(c.directAgainRpsOverDirect)}`,
    `the VIP's connections per backend during the measurements (gcp-1's weft_lb_stats): ${lbText(r.samples, "vip")}; new connections: ${lbText(r.samples, "vip-new")}`,
    ...progLines(r.samples, cases),
    `spread over the backends (check before measuring): ${Object.entries(r.spread).map(([k, t]) => `${k} ${JSON.stringify(t)}`).join("; ")}`,
    `result: ${jsonPath}`,
  ];
  return lines.join("\n");
}
