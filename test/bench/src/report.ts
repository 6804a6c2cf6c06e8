/**
 * The benchmark's result: the JSON document (`bench-results/overlay-<timestamp>.json` and
 * `overlay-latest.json`) with every raw sample, and the short table printed on stdout.
 */
import { spawnSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { availableParallelism, cpus, release, totalmem } from "node:os";
import { join } from "node:path";
import type { AgentRestartResult, HostRestartResult, StartupResult } from "./convergence.js";
import { parseWireguardGoVersion } from "./parse.js";
import { PATH_LABELS, PATH_NAMES, type PathName, type PathSample, type PathSummary, type PathTarget, type Ratio } from "./paths.js";
import type { RelayBenchResult } from "./relay.js";

export const SCHEMA = "weft.bench.overlay/v1";

export interface Machine {
  nproc: number;
  cpuModel: string | null;
  memoryBytes: number;
  kernel: string;
  node: string;
  /** Debian's (/usr/bin/wireguard-go) and the current build Weft runs and ships (.weft/bin). */
  wireguardGo: string | null;
  wireguardGoCurrent: string | null;
  iperf3: string | null;
  weftCommit: string | null;
  weftDirty: boolean | null;
}

export interface OverlayBenchResult {
  schema: typeof SCHEMA;
  date: string;
  durationMs: number;
  machine: Machine;
  settings: {
    prefix: string;
    from: string;
    to: string;
    rounds: number;
    iperfSeconds: number;
    pings: number;
    pingIntervalS: number;
    mtu: number;
    handPort: number;
    handDebianPort: number;
    /** What the agents and the controller ran: "the package's bundle" (as installed), "cli/dist" or the path given with --cli. */
    build: string;
  };
  paths: Record<PathName, PathTarget>;
  /** Every measurement in the order taken. */
  samples: (PathSample & { path: PathName })[];
  summary: Record<PathName, PathSummary>;
  ratios: { weftOverUnderlay: Ratio; handOverUnderlay: Ratio; weftOverHand: Ratio; currentOverDebian: Ratio };
  convergence: { startup: StartupResult; agentRestart: AgentRestartResult; hostRestart: HostRestartResult };
  /** The relayed-path row: a pair behind NAT over the relay, then over its punched direct path. */
  relay?: RelayBenchResult;
}

/** What this machine is, for comparing results across runs. */
export function describeMachine(repo: string): Machine {
  const out = (argv: string[]): string | null => {
    const [file, ...args] = argv as [string, ...string[]];
    const r = spawnSync(file, args, { encoding: "utf8", timeout: 5000 });
    return r.status === 0 ? `${r.stdout}${r.stderr}` : null;
  };
  const commit = out(["git", "-C", repo, "rev-parse", "HEAD"])?.trim() ?? null;
  const porcelain = commit === null ? null : out(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"]);
  return {
    nproc: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? null,
    memoryBytes: totalmem(),
    kernel: release(),
    node: process.version,
    wireguardGo: parseWireguardGoVersion(out(["/usr/bin/wireguard-go", "--version"]) ?? ""),
    wireguardGoCurrent: parseWireguardGoVersion(out([join(repo, ".weft", "bin", "wireguard-go"), "--version"]) ?? ""),
    iperf3: /iperf (\S+)/.exec(out(["iperf3", "--version"]) ?? "")?.[1] ?? null,
    weftCommit: commit,
    weftDirty: porcelain === null ? null : porcelain.trim() !== "",
  };
}

/** Writes `overlay-<timestamp>.json` and `overlay-latest.json`; returns the first path. */
export async function writeResult(dir: string, result: OverlayBenchResult): Promise<string> {
  await mkdir(dir, { recursive: true });
  const stamp = result.date.replace(/\.\d+Z$/, "Z").replace(/:/g, "-");
  const path = join(dir, `overlay-${stamp}.json`);
  const text = `${JSON.stringify(result, null, 2)}\n`;
  await writeFile(path, text);
  await writeFile(join(dir, "overlay-latest.json"), text);
  return path;
}

const f = (x: number, digits: number): string => (Number.isFinite(x) ? x.toFixed(digits) : "-");
const mbps = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "-");
const secs = (ms: number | null): string => (ms === null ? "-" : `${(ms / 1000).toFixed(2)} s`);

export function table(header: readonly string[], rows: readonly (readonly string[])[], rightAlign: ReadonlySet<number> = new Set()): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (rightAlign.has(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** The start-up lines of the summary (also printed alone by `--startup-only`). */
export function formatStartup(s: StartupResult): string {
  return [
    `start-up: ${s.agents} agents started at once; time until a host has handshakes with all ${s.peersEach} peers:`,
    `  seen by 50 ms poll   min ${secs(s.detectedMs.min)}  median ${secs(s.detectedMs.p50)}  max ${secs(s.detectedMs.max)}`,
    `  last handshake done  min ${secs(s.handshakeMs.min)}  median ${secs(s.handshakeMs.p50)}  max ${secs(s.handshakeMs.max)}`,
    `  per host: ${s.perHost.map((h) => `${h.host} ${secs(h.detectedMs)}`).join(", ")}`,
  ].join("\n");
}

/** The human-readable summary printed on stdout. */
export function formatReport(r: OverlayBenchResult, jsonPath: string): string {
  const s = r.settings;
  const m = r.machine;
  const lines: string[] = [];
  lines.push(
    `Weft overlay benchmark  ${r.date}  (${m.nproc} cores, kernel ${m.kernel}, wireguard-go ${m.wireguardGoCurrent ?? "?"} current / ${m.wireguardGo ?? "?"} Debian, MTU ${s.mtu}, agents ran ${s.build})`,
    `${s.from} → ${s.to}: ${s.rounds} rounds × [${PATH_NAMES.join(", ")}] in rotating order; iperf3 TCP ${s.iperfSeconds} s, ${s.pings} pings at ${s.pingIntervalS} s; medians over rounds`,
    "",
  );
  lines.push(
    table(
      ["path", "to", "TCP Mbit/s", "per round", "rtt min", "avg", "max", "p50 ms", "lost"],
      PATH_NAMES.map((p) => {
        const x = r.summary[p];
        return [
          PATH_LABELS[p],
          r.paths[p].address,
          mbps(x.throughputMbps),
          x.throughputMbpsPerRound.map((v) => mbps(v)).join(" / "),
          f(x.latencyMs.min, 3),
          f(x.latencyMs.avg, 3),
          f(x.latencyMs.max, 3),
          f(x.latencyMs.p50, 3),
          `${x.pingsLost}/${x.pingsSent}`,
        ];
      }),
      new Set([2, 4, 5, 6, 7, 8]),
    ),
    "",
  );
  const ratioRow = (name: string, q: Ratio) => [name, f(q.throughput, 2), f(q.latencyP50, 2), `${q.addedLatencyP50Ms >= 0 ? "+" : ""}${f(q.addedLatencyP50Ms, 3)}`];
  lines.push(
    table(
      ["ratio", "throughput", "rtt p50", "added rtt p50 ms"],
      [
        ratioRow("weft / underlay", r.ratios.weftOverUnderlay),
        ratioRow("hand / underlay", r.ratios.handOverUnderlay),
        ratioRow("weft / hand  (Weft's own cost; ~1.00 expected)", r.ratios.weftOverHand),
        ratioRow("current / Debian wireguard-go (both by hand)", r.ratios.currentOverDebian),
      ],
      new Set([1, 2, 3]),
    ),
    "",
  );
  if (r.relay) {
    const x = r.relay;
    const row = (name: string, p: PathSummary) => [name, mbps(p.throughputMbps), p.throughputMbpsPerRound.map((v) => mbps(v)).join(" / "), f(p.latencyMs.min, 3), f(p.latencyMs.avg, 3), f(p.latencyMs.max, 3), f(p.latencyMs.p50, 3), `${p.pingsLost}/${p.pingsSent}`];
    lines.push(
      `${x.from} → ${x.to} (both behind NAT; ${x.to}'s NAT picks a port per destination): relayed via ${x.via}, then direct once that NAT keeps ports`,
      table(
        ["path", "TCP Mbit/s", "per round", "rtt min", "avg", "max", "p50 ms", "lost"],
        [row(`relayed via ${x.via}`, x.relayed), row("direct (punched)", x.direct)],
        new Set([1, 3, 4, 5, 6, 7]),
      ),
      `  relayed / direct: throughput ${f(x.ratio.throughput, 2)}, rtt p50 ${f(x.ratio.latencyP50, 2)} (${x.ratio.addedLatencyP50Ms >= 0 ? "+" : ""}${f(x.ratio.addedLatencyP50Ms, 3)} ms); relayed path up ${secs(x.timeToRelayMs)} after ${x.to}'s agent started, direct ${secs(x.timeToDirectMs)} after its NAT began keeping ports`,
      "",
    );
  }
  const c = r.convergence;
  lines.push(formatStartup(c.startup));
  const ar = c.agentRestart;
  lines.push(
    `agent restart (${ar.host}; state and interface kept): re-synced from NATS ${secs(ar.syncedMs)} after SIGTERM (stop took ${secs(ar.stopMs)}); ` +
      `live sessions never below ${ar.minLiveSessions}/${ar.peers}${ar.minLiveSessions === ar.peers ? " (no handshake went stale)" : ""}`,
  );
  const hr = c.hostRestart;
  const perPeer = Object.entries(hr.peerHandshakeMs)
    .map(([peer, ms]) => `${peer} ${ms === null ? `none within ${secs(hr.timeoutMs)}` : secs(ms)}`)
    .join(", ");
  lines.push(
    hr.detectedMs !== null
      ? `host restart (${hr.host}; interface deleted, state kept): all ${hr.peers} handshakes fresh ${secs(hr.detectedMs)} after agent start`
      : `host restart (${hr.host}; interface deleted, state kept): NOT all fresh — ${hr.freshPeers}/${hr.peers} after ${secs(hr.timeoutMs)}, waiting for ${hr.waitingFor.join(", ")}`,
    `  per peer: ${perPeer}`,
    "",
    `results: ${jsonPath}`,
  );
  return lines.join("\n");
}
