/**
 * The scale benchmark's figures: latency summaries named with their unit, the result of one fleet
 * size, the targets judged, the table over all sizes with the growth per 1,000 agents (pure).
 */
import { percentile } from "./stats.js";

export interface Latency {
  n: number;
  /** Agents that never got there within the wait. */
  missing: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export function latency(xs: readonly number[]): Latency {
  const got = xs.filter((x) => Number.isFinite(x));
  return { n: got.length, missing: xs.length - got.length, p50Ms: percentile(got, 50), p99Ms: percentile(got, 99), maxMs: got.length ? Math.max(...got) : Number.NaN };
}

export interface ProcFigures {
  rssMb: number;
  hwmMb: number;
  /** CPU (percent of one core) averaged over each phase. */
  cpuPercent: { enroll: number; sync: number; idle: number; changes: number };
}

export interface ChangeBytes {
  /** nats-server /varz out_bytes over the change, minus the idle rate (heartbeats) over as long. */
  natsOutBytes: number;
  natsOutBytesPerAgent: number;
  /** What the agents' connections received over the change (their own counters). */
  agentsInBytes: number;
  agentsInBytesPerAgent: number;
}

export interface SizeResult {
  agents: number;
  fullAgents: number;
  workers: number;
  enrollment: { ok: number; failed: number; wallS: number; ratePerS: number; perAgent: Latency; failures: string[] };
  initialSync: Latency & { fullAgents: Latency; failures: string[] };
  nodeAddedToAll: Latency;
  nodeRemovedToAll: Latency;
  policyChangeToAll: Latency;
  /** natsStates: the agents' connection states when the wait ended. */
  /**
   * natsStates: the agents' connection states when the wait ended; judgedOffline: nodes the
   * controller judged offline from the kill until then (none should be: the outage is not theirs).
   */
  reconnectStorm: { reconnected: Latency; resynced: Latency; natsStates?: Record<string, number>; judgedOffline?: number };
  /** From the instant the ...ToAll figures start until the change's API call answered: the controller's part of them. */
  apiAnsweredMs?: { nodeAdded: number; nodeRemoved: number; policyChange: number };
  bytesPerChange: { nodeAdded: ChangeBytes; nodeRemoved: ChangeBytes; policyChange: ChangeBytes };
  idle: { natsOutBytesPerS: number };
  controller: ProcFigures;
  nats: ProcFigures;
  simWorkersRssMb: number[];
  targets: { changeToAllP99Under2s: boolean; reconnectP99Under15s: boolean; controllerRssUnder1GB: boolean };
}

export function judge(r: Omit<SizeResult, "targets">): SizeResult["targets"] {
  const changes = [r.nodeAddedToAll, r.nodeRemovedToAll, r.policyChangeToAll];
  return {
    changeToAllP99Under2s: changes.every((c) => c.missing === 0 && c.p99Ms < 2000),
    reconnectP99Under15s: r.reconnectStorm.reconnected.missing === 0 && r.reconnectStorm.reconnected.p99Ms < 15_000,
    controllerRssUnder1GB: r.controller.hwmMb < 1024,
  };
}

interface Row {
  label: string;
  get: (r: SizeResult) => number;
  unit: string;
  digits?: number;
}

const ROWS: Row[] = [
  { label: "enrollment rate", get: (r) => r.enrollment.ratePerS, unit: "agents/s", digits: 1 },
  { label: "initial sync p50", get: (r) => r.initialSync.p50Ms, unit: "ms" },
  { label: "initial sync p99", get: (r) => r.initialSync.p99Ms, unit: "ms" },
  { label: "initial sync max", get: (r) => r.initialSync.maxMs, unit: "ms" },
  { label: "node added → all p50", get: (r) => r.nodeAddedToAll.p50Ms, unit: "ms" },
  { label: "node added → all p99", get: (r) => r.nodeAddedToAll.p99Ms, unit: "ms" },
  { label: "node added → all max", get: (r) => r.nodeAddedToAll.maxMs, unit: "ms" },
  { label: "  of which the API call (enroll)", get: (r) => r.apiAnsweredMs?.nodeAdded ?? Number.NaN, unit: "ms" },
  { label: "node removed → all p50", get: (r) => r.nodeRemovedToAll.p50Ms, unit: "ms" },
  { label: "node removed → all p99", get: (r) => r.nodeRemovedToAll.p99Ms, unit: "ms" },
  { label: "node removed → all max", get: (r) => r.nodeRemovedToAll.maxMs, unit: "ms" },
  { label: "  of which the API call (delete)", get: (r) => r.apiAnsweredMs?.nodeRemoved ?? Number.NaN, unit: "ms" },
  { label: "policy change → all p50", get: (r) => r.policyChangeToAll.p50Ms, unit: "ms" },
  { label: "policy change → all p99", get: (r) => r.policyChangeToAll.p99Ms, unit: "ms" },
  { label: "policy change → all max", get: (r) => r.policyChangeToAll.maxMs, unit: "ms" },
  { label: "  of which the API call (apply)", get: (r) => r.apiAnsweredMs?.policyChange ?? Number.NaN, unit: "ms" },
  { label: "NATS restart: reconnected p99", get: (r) => r.reconnectStorm.reconnected.p99Ms, unit: "ms" },
  { label: "NATS restart: resynced p99", get: (r) => r.reconnectStorm.resynced.p99Ms, unit: "ms" },
  { label: "NATS restart: judged offline", get: (r) => r.reconnectStorm.judgedOffline ?? Number.NaN, unit: "nodes" },
  { label: "bytes/node added (NATS)", get: (r) => r.bytesPerChange.nodeAdded.natsOutBytes, unit: "B" },
  { label: "  per agent", get: (r) => r.bytesPerChange.nodeAdded.natsOutBytesPerAgent, unit: "B" },
  { label: "bytes/node removed (NATS)", get: (r) => r.bytesPerChange.nodeRemoved.natsOutBytes, unit: "B" },
  { label: "  per agent", get: (r) => r.bytesPerChange.nodeRemoved.natsOutBytesPerAgent, unit: "B" },
  { label: "bytes/policy change (NATS)", get: (r) => r.bytesPerChange.policyChange.natsOutBytes, unit: "B" },
  { label: "  per agent", get: (r) => r.bytesPerChange.policyChange.natsOutBytesPerAgent, unit: "B" },
  { label: "controller RSS (end)", get: (r) => r.controller.rssMb, unit: "MB" },
  { label: "controller RSS peak", get: (r) => r.controller.hwmMb, unit: "MB" },
  { label: "controller CPU enroll", get: (r) => r.controller.cpuPercent.enroll, unit: "%" },
  { label: "controller CPU sync", get: (r) => r.controller.cpuPercent.sync, unit: "%" },
  { label: "controller CPU idle", get: (r) => r.controller.cpuPercent.idle, unit: "%" },
  { label: "nats-server RSS", get: (r) => r.nats.rssMb, unit: "MB" },
  { label: "nats-server RSS peak", get: (r) => r.nats.hwmMb, unit: "MB" },
  { label: "nats-server CPU sync", get: (r) => r.nats.cpuPercent.sync, unit: "%" },
  { label: "nats-server CPU idle", get: (r) => r.nats.cpuPercent.idle, unit: "%" },
];

/** Growth per 1,000 agents between the smallest and the largest size (NaN with one size). */
export function growthPer1000(results: readonly SizeResult[], get: (r: SizeResult) => number): number {
  if (results.length < 2) return Number.NaN;
  const a = results[0] as SizeResult;
  const b = results[results.length - 1] as SizeResult;
  return ((get(b) - get(a)) / (b.agents - a.agents)) * 1000;
}

export function table(results: readonly SizeResult[]): string {
  const fmt = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : "-");
  const head = ["", ...results.map((r) => `${r.agents} agents`), "per +1,000"];
  const lines = ROWS.map((row) => [`${row.label} (${row.unit})`, ...results.map((r) => fmt(row.get(r), row.digits)), fmt(growthPer1000(results, row.get), row.digits ?? 1)]);
  lines.push(["full agents (PeerWatch) / workers", ...results.map((r) => `${r.fullAgents} / ${r.workers}`), ""]);
  lines.push(["missing (sync/add/remove/policy/reconnect)", ...results.map((r) => [r.initialSync.missing, r.nodeAddedToAll.missing, r.nodeRemovedToAll.missing, r.policyChangeToAll.missing, r.reconnectStorm.reconnected.missing].join("/")), ""]);
  const all = [head, ...lines];
  const widths = head.map((_, c) => Math.max(...all.map((l) => (l[c] ?? "").length)));
  const text = all.map((l) => l.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join("  ")).join("\n");
  const targets = results.map(
    (r) =>
      `  ${r.agents} agents: change to all p99 < 2 s ${r.targets.changeToAllP99Under2s ? "MET" : "NOT MET"}; ` +
      `reconnected p99 < 15 s ${r.targets.reconnectP99Under15s ? "MET" : "NOT MET"}; ` +
      `controller RSS < 1 GB ${r.targets.controllerRssUnder1GB ? "MET" : "NOT MET"} (peak ${fmt(r.controller.hwmMb)} MB)`,
  );
  return `${text}\n\ntargets:\n${targets.join("\n")}`;
}
