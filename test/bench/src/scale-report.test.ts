import { describe, expect, it } from "vitest";
import { growthPer1000, judge, latency, table, type SizeResult } from "./scale-report.js";

const lat = (p99Ms: number, missing = 0) => ({ n: 10, missing, p50Ms: p99Ms / 2, p99Ms, maxMs: p99Ms });
const bytes = { natsOutBytes: 1000, natsOutBytesPerAgent: 1, agentsInBytes: 900, agentsInBytesPerAgent: 0.9 };
const proc = (hwmMb: number) => ({ rssMb: hwmMb, hwmMb, cpuPercent: { enroll: 90, sync: 50, idle: 3, changes: 10 } });

function result(agents: number, o: { changeP99?: number; missing?: number; reconnectP99?: number; ctlHwmMb?: number } = {}): SizeResult {
  const r = {
    agents,
    fullAgents: agents,
    workers: 1,
    enrollment: { ok: agents, failed: 0, wallS: agents / 10, ratePerS: 10, perAgent: lat(100), failures: [] },
    initialSync: { ...lat(1000), fullAgents: lat(1000), failures: [] },
    nodeAddedToAll: lat(o.changeP99 ?? 100, o.missing ?? 0),
    nodeRemovedToAll: lat(100),
    policyChangeToAll: lat(100),
    reconnectStorm: { reconnected: lat(o.reconnectP99 ?? 5000), resynced: lat(6000) },
    bytesPerChange: { nodeAdded: bytes, nodeRemoved: bytes, policyChange: bytes },
    idle: { natsOutBytesPerS: 100 },
    controller: proc(o.ctlHwmMb ?? 300),
    nats: proc(60),
    simWorkersRssMb: [500],
  };
  return { ...r, targets: judge(r) };
}

describe("scale report", () => {
  it("scale report - latency ignores agents that never got there and counts them as missing", () => {
    const l = latency([10, 20, Number.NaN, 30]);
    expect(l, `latency: got ${JSON.stringify(l)}`).toMatchObject({ n: 3, missing: 1, p50Ms: 20, maxMs: 30 });
    expect(Number.isNaN(latency([]).p99Ms), "p99 of nothing is NaN").toBe(true);
  });

  it("scale report - targets: change p99 under 2 s with nobody missing, reconnect p99 under 15 s, controller peak under 1 GB", () => {
    expect(result(1000).targets).toEqual({ changeToAllP99Under2s: true, reconnectP99Under15s: true, controllerRssUnder1GB: true });
    expect(result(1000, { changeP99: 2500 }).targets.changeToAllP99Under2s, "p99 2.5 s").toBe(false);
    expect(result(1000, { missing: 1 }).targets.changeToAllP99Under2s, "one agent never got the change").toBe(false);
    expect(result(1000, { reconnectP99: 16_000 }).targets.reconnectP99Under15s, "reconnect p99 16 s").toBe(false);
    expect(result(1000, { ctlHwmMb: 1100 }).targets.controllerRssUnder1GB, "controller peak 1.1 GB").toBe(false);
  });

  it("scale report - growth per 1,000 agents between the smallest and largest size", () => {
    const g = growthPer1000([result(1000, { ctlHwmMb: 300 }), result(5000, { ctlHwmMb: 700 })], (r) => r.controller.hwmMb);
    expect(g, `growth: got ${g}, want 100 MB per 1,000`).toBe(100);
    expect(Number.isNaN(growthPer1000([result(1000)], (r) => r.controller.hwmMb)), "one size: no growth").toBe(true);
  });

  it("scale report - the table names every size and states each target as met or not", () => {
    const text = table([result(1000), result(5000, { changeP99: 3000 })]);
    expect(text).toContain("1000 agents");
    expect(text).toContain("5000 agents");
    expect(text).toMatch(/5000 agents: change to all p99 < 2 s NOT MET/);
    expect(text).toMatch(/1000 agents: change to all p99 < 2 s MET/);
  });
});
