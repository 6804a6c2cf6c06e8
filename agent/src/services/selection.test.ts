import type { NodeService, NodeServiceBackend } from "@weft/protocol";
import { describe, expect, it } from "vitest";
import { desiredServices } from "./desired.js";
import { NO_LOCAL_VIEW, TABLE_SLOTS, apportion, candidates, capBackends, localityPick, selectionFor, tiers } from "./selection.js";

const self = { site: "aws-eu", cloud: "aws", nodeId: "n-0000000000000001" };

function backend(address: string, site: string, cloud: string | undefined, o: Partial<NodeServiceBackend> = {}): NodeServiceBackend {
  return { address, node: `node-${address.split(".")[3]}`, identity: 300, site, ...(cloud ? { cloud } : {}), subset: "", weight: 1, healthy: true, ...o };
}

function service(o: Partial<NodeService> & { backends: NodeServiceBackend[] }): NodeService {
  const all = o.backends.map((_, i) => i);
  return {
    name: "api",
    namespace: "shop",
    vip: "100.96.0.1",
    algorithm: "round-robin",
    locality: "site",
    ports: [{ port: 80, protocol: "tcp", targetPort: 8080 }],
    access: { "500": [all] },
    ...o,
  };
}

const counts = (table: number[]) => table.reduce<Record<number, number>>((m, i) => ({ ...m, [i]: (m[i] ?? 0) + 1 }), {});

describe("services selection", () => {
  it("selection - locality tiers: same site, then same cloud, then any; failover when a tier has no healthy backend", () => {
    const backends = [backend("10.0.0.1", "aws-eu", "aws"), backend("10.0.0.2", "aws-us", "aws"), backend("10.0.0.3", "gcp-eu", "gcp")];
    const svc = service({ backends });
    const sel = selectionFor(svc, 500, 0, self);
    expect(sel.backends, "site tier: only the same-site backend").toEqual([{ addr: "10.0.0.1", port: 8080 }]);

    const siteDown = service({ backends: backends.map((b, i) => (i === 0 ? { ...b, healthy: false } : b)) });
    expect(selectionFor(siteDown, 500, 0, self).backends.map((b) => b.addr), "site down: the same cloud").toEqual(["10.0.0.2"]);

    const cloudDown = service({ backends: backends.map((b, i) => (i < 2 ? { ...b, healthy: false } : b)) });
    expect(selectionFor(cloudDown, 500, 0, self).backends.map((b) => b.addr), "cloud down: any").toEqual(["10.0.0.3"]);

    const anyLocality = service({ backends, locality: "any" });
    expect(selectionFor(anyLocality, 500, 0, self).backends.length, "locality any: all three").toBe(3);
    const cloudLocality = service({ backends, locality: "cloud" });
    expect(selectionFor(cloudLocality, 500, 0, self).backends.map((b) => b.addr), "locality cloud: both aws ones").toEqual(["10.0.0.1", "10.0.0.2"]);
    expect(tiers("site", { site: "x" }).length).toBe(3);
  });

  it("selection - a node with no cloud skips the cloud tier (unknown matches nothing)", () => {
    const backends = [backend("10.0.0.2", "aws-us", "aws"), backend("10.0.0.3", "gcp-eu", undefined)];
    const sel = localityPick(service({ backends }), [0, 1], { site: "onprem" });
    expect(sel, "no same site, no cloud: the any tier").toEqual([0, 1]);
  });

  it("selection - only backends the source may reach (policy) are candidates; a source without access gets an empty table", () => {
    const backends = [backend("10.0.0.1", "aws-eu", "aws"), backend("10.0.0.2", "aws-eu", "aws")];
    const svc = service({ backends, access: { "500": [[1]] } });
    expect(selectionFor(svc, 500, 0, self).backends.map((b) => b.addr)).toEqual(["10.0.0.2"]);
    const none = selectionFor(svc, 999, 0, self);
    expect([none.backends, none.table], "unknown source: nothing to choose (connect refused)").toEqual([[], []]);
  });

  it("selection - no healthy candidate: an empty table, never an unhealthy backend", () => {
    const svc = service({ backends: [backend("10.0.0.1", "aws-eu", "aws", { healthy: false })] });
    expect(selectionFor(svc, 500, 0, self)).toMatchObject({ backends: [], table: [] });
  });

  it("selection - passive ejections remove a backend, but never the last ones", () => {
    const svc = service({ backends: [backend("10.0.0.1", "aws-eu", "aws"), backend("10.0.0.2", "aws-eu", "aws")] });
    const one = { ejected: new Set(["10.0.0.1"]), latencyMs: new Map<string, number>() };
    expect(candidates(svc, [0, 1], one), "one ejected").toEqual([1]);
    const both = { ejected: new Set(["10.0.0.1", "10.0.0.2"]), latencyMs: new Map<string, number>() };
    expect(candidates(svc, [0, 1], both), "all ejected: ejections ignored").toEqual([0, 1]);
  });

  it("selection - round robin and least connections list each backend once, in address order", () => {
    const backends = [backend("10.0.0.1", "s", "c"), backend("10.0.0.2", "s", "c"), backend("10.0.0.3", "s", "c")];
    for (const algorithm of ["round-robin", "least-connections"] as const) {
      const sel = selectionFor(service({ backends, algorithm, locality: "any" }), 500, 0, self);
      expect(sel.table, `${algorithm} table`).toEqual([0, 1, 2]);
      expect(sel.algo).toBe(algorithm === "round-robin" ? "roundRobin" : "leastConnections");
    }
  });

  it("selection - weighted: subset weights 90/10 fill the table in proportion, split among each subset's backends", () => {
    const backends = [
      backend("10.0.0.1", "aws-eu", "aws", { subset: "stable", weight: 90 }),
      backend("10.0.0.2", "aws-eu", "aws", { subset: "stable", weight: 90 }),
      backend("10.0.0.3", "gcp-eu", "gcp", { subset: "canary", weight: 10 }),
    ];
    const sel = selectionFor(service({ backends, algorithm: "weighted", locality: "any" }), 500, 0, self);
    const c = counts(sel.table);
    expect(sel.table.length, "table size").toBe(TABLE_SLOTS);
    expect([c[0], c[1], c[2]], "45 % / 45 % / 10 % of the slots").toEqual([432, 432, 96]);
  });

  it("selection - weighted with locality: each subset picks its own nearest tier, so the canary keeps its share", () => {
    const backends = [backend("10.0.0.1", "aws-eu", "aws", { subset: "stable", weight: 90 }), backend("10.0.0.2", "gcp-eu", "gcp", { subset: "stable", weight: 90 }), backend("10.0.0.3", "gcp-eu", "gcp", { subset: "canary", weight: 10 })];
    const sel = selectionFor(service({ backends, algorithm: "weighted", locality: "site" }), 500, 0, self);
    expect(sel.backends.map((b) => b.addr), "stable: its same-site backend; canary: only in gcp").toEqual(["10.0.0.1", "10.0.0.3"]);
    const c = counts(sel.table);
    expect([c[0], c[1]]).toEqual([864, 96]);
  });

  it("selection - ewma-latency: weights ∝ 1/latency, unknown latency = the median, a floor keeps slow backends sampled", () => {
    const backends = [backend("10.0.0.1", "s", "c"), backend("10.0.0.2", "s", "c"), backend("10.0.0.3", "s", "c")];
    const local = { ejected: new Set<string>(), latencyMs: new Map([["10.0.0.1", 1], ["10.0.0.2", 500]]) };
    const sel = selectionFor(service({ backends, algorithm: "ewma-latency", locality: "any" }), 500, 0, self, local);
    const c = counts(sel.table);
    expect(c[0], `fast backend slots: ${JSON.stringify(c)}`).toBeGreaterThan(400);
    expect(c[1], "slow backend: about 2 % (the floor)").toBeGreaterThanOrEqual(10);
    expect(c[1]).toBeLessThanOrEqual(25);
    expect(c[2], "no sample yet: the median's weight (of 1 and 500: 500 → the floor too)").toBeGreaterThan(0);
  });

  it("selection - apportion keeps at least one slot for every positive weight and sums to the target", () => {
    const slots = apportion([1000, 1, 1, 0]);
    expect(slots[3]).toBe(0);
    expect(slots[1]).toBe(1);
    expect(slots.reduce((a, b) => a + b, 0)).toBe(TABLE_SLOTS);
    expect(apportion([0, 0])).toEqual([0, 0]);
  });

  it("selection - more than 64 candidates: a stable subset of 64 per node", () => {
    const backends = Array.from({ length: 100 }, (_, i) => backend(`10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`, "s", "c"));
    const svc = service({ backends, locality: "any" });
    const a = capBackends(svc, backends.map((_, i) => i), { nodeId: "n-0000000000000001" });
    const again = capBackends(svc, backends.map((_, i) => i), { nodeId: "n-0000000000000001" });
    const other = capBackends(svc, backends.map((_, i) => i), { nodeId: "n-0000000000000002" });
    expect(a.length).toBe(64);
    expect(again, "stable for one node").toEqual(a);
    expect(other, "another node gets another subset").not.toEqual(a);
    expect(selectionFor(svc, 500, 0, self).backends.length).toBe(64);
  });

  it("selection - the rate limit travels with every entry; burst defaults to the rate", () => {
    const svc = service({ backends: [backend("10.0.0.1", "aws-eu", "aws")], rateLimit: { connectionsPerSecond: 20 } });
    expect(selectionFor(svc, 500, 0, self)).toMatchObject({ rate: 20, burst: 20 });
    expect(selectionFor(service({ backends: [backend("10.0.0.1", "aws-eu", "aws")] }), 500, 0, self, NO_LOCAL_VIEW)).toMatchObject({ rate: 0, burst: 0 });
  });

  it("desired - one entry per VIP, port and source identity with access, keyed like the map", () => {
    const svc = service({
      backends: [backend("10.0.0.1", "aws-eu", "aws")],
      ports: [
        { port: 80, protocol: "tcp", targetPort: 8080 },
        { port: 53, protocol: "udp", targetPort: 5353 },
      ],
      access: { "500": [[0], [0]], "501": [[0], []] },
    });
    const d = desiredServices({ version: 1, nodeId: self.nodeId, zone: "z", serviceCidr: "100.96.0.0/16", self: { site: "aws-eu", cloud: "aws" }, services: [svc], checks: [], compiledAt: "" }, self.nodeId);
    expect([...d.vips]).toEqual(["100.96.0.1"]);
    expect([...d.entries.keys()].sort()).toEqual(["100.96.0.1:53/17@500", "100.96.0.1:53/17@501", "100.96.0.1:80/6@500", "100.96.0.1:80/6@501"]);
    expect(d.entries.get("100.96.0.1:53/17@500")![1].backends, "udp port: target port 5353").toEqual([{ addr: "10.0.0.1", port: 5353 }]);
    expect(d.entries.get("100.96.0.1:53/17@501")![1].table, "no access on that port: refuse").toEqual([]);
    expect(desiredServices(null, self.nodeId).entries.size).toBe(0);
  });
});
