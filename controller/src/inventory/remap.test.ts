/** Remapped prefixes for site networks that overlap another site's. */
import type { InventoryOverlap } from "@weft/protocol";
import { describe, expect, it } from "vitest";
import { planGateways } from "./gateways.js";
import { planRemaps, remapKey, remappedAddress } from "./remap.js";

const overlap = (a: [string, string], b: [string, string], sameSite = false): InventoryOverlap => ({
  a: { provider: "aws", account: "1", network: `net-${a[0]}`, site: a[0], cidr: a[1] },
  b: { provider: "azure", account: "2", network: `net-${b[0]}`, site: b[0], cidr: b[1] },
  sameSite,
});
const cidrs = ["10.10.0.0/16", "10.30.0.0/16", "192.168.50.0/24"];

describe("inventory/remap", () => {
  it("remap - each site of a cross-site overlap gets its own prefix of the same size from the pool", () => {
    const plan = planRemaps({ overlaps: [overlap(["aws", "10.10.0.0/16"], ["azure", "10.10.0.0/16"])], inventoryCidrs: cidrs, pool: "100.96.0.0/12", previous: new Map() });
    expect(Object.fromEntries([...plan.bySite].map(([s, m]) => [s, Object.fromEntries(m)])), "assignments").toEqual({
      aws: { "10.10.0.0/16": "100.96.0.0/16" },
      azure: { "10.10.0.0/16": "100.97.0.0/16" },
    });
    expect(plan.unassigned, "unassigned").toEqual([]);
  });

  it("remap - a pool overlapping the overlay's ranges never hands them out: a sticky prefix inside the service range moves", () => {
    const previous = new Map([[remapKey("aws", "10.10.0.0/16"), "100.96.0.0/16"]]);
    const plan = planRemaps({ overlaps: [overlap(["aws", "10.10.0.0/16"], ["azure", "10.10.0.0/16"])], inventoryCidrs: cidrs, reserved: ["100.64.0.0/16", "100.96.0.0/16"], pool: "100.96.0.0/12", previous });
    expect(Object.fromEntries([...plan.bySite].map(([s, m]) => [s, Object.fromEntries(m)])), "assignments outside 100.96.0.0/16").toEqual({
      aws: { "10.10.0.0/16": "100.97.0.0/16" },
      azure: { "10.10.0.0/16": "100.98.0.0/16" },
    });
  });

  it("remap - assignments are sticky, skip real networks, and report what the pool cannot hold", () => {
    const previous = new Map([[remapKey("azure", "10.10.0.0/16"), "100.96.0.0/16"]]);
    const sticky = planRemaps({ overlaps: [overlap(["aws", "10.10.0.0/16"], ["azure", "10.10.0.0/16"])], inventoryCidrs: [...cidrs, "100.97.0.0/16"], pool: "100.96.0.0/12", previous });
    expect(sticky.bySite.get("azure")?.get("10.10.0.0/16"), "azure keeps its prefix").toBe("100.96.0.0/16");
    expect(sticky.bySite.get("aws")?.get("10.10.0.0/16"), "aws skips a real network in the pool").toBe("100.98.0.0/16");
    const small = planRemaps({ overlaps: [overlap(["aws", "10.0.0.0/8"], ["azure", "10.0.0.0/8"])], inventoryCidrs: [], pool: "100.96.0.0/12", previous: new Map() });
    expect(small.unassigned.map((u) => u.reason), "too big").toEqual(["10.0.0.0/8 is larger than the remap pool 100.96.0.0/12", "10.0.0.0/8 is larger than the remap pool 100.96.0.0/12"]);
    const off = planRemaps({ overlaps: [overlap(["aws", "10.10.0.0/16"], ["azure", "10.10.0.0/16"])], inventoryCidrs: cidrs, pool: "", previous: new Map() });
    expect(off.bySite.size, "pool off").toBe(0);
    expect(off.unassigned.length, "reported").toBe(2);
    const same = planRemaps({ overlaps: [overlap(["aws", "10.10.0.0/16"], ["aws", "10.10.0.0/24"], true)], inventoryCidrs: cidrs, pool: "100.96.0.0/12", previous: new Map() });
    expect(same.bySite.size, "an overlap inside one site is not remapped").toBe(0);
  });

  it("remap - the gateway plan advertises the remapped prefix instead of withholding, and says what it translates", () => {
    const remaps = new Map([["aws", new Map([["10.10.0.0/16", "100.96.0.0/16"]])]]);
    const node = { nodeId: "n-0000000000000001", name: "aws-1", site: "aws", labels: { "weft:gateway": "true" }, siteSource: "join-key" as const, status: "online" as const };
    const siteRoutes = [{ site: "aws", inferred: false, cidrs: ["10.10.0.0/16", "10.11.0.0/16"], networks: ["vpc"], conflicts: ["10.10.0.0/16", "10.11.0.0/16"] }];
    const plan = planGateways({ siteRoutes, nodes: [node], reserved: [{ cidr: "100.64.0.0/16", what: "overlay.cidr" }], remaps });
    expect(plan.siteRoutes[0]?.advertised, "advertised").toEqual(["100.96.0.0/16"]);
    expect(plan.siteRoutes[0]?.remaps, "remaps").toEqual([{ cidr: "10.10.0.0/16", remapped: "100.96.0.0/16" }]);
    expect(plan.siteRoutes[0]?.withheld.map((w) => w.cidr), "the other conflict stays withheld").toEqual(["10.11.0.0/16"]);
    expect(plan.byNode.get(node.nodeId), "the gateway routes").toEqual(["100.96.0.0/16"]);
    expect(plan.remapsByNode.get(node.nodeId), "and translates").toEqual([{ cidr: "10.10.0.0/16", remapped: "100.96.0.0/16" }]);
  });

  it("remap - an address keeps its host bits through the remapped prefix", () => {
    expect(remappedAddress("10.10.0.5", "10.10.0.0/16", "100.97.0.0/16"), "10.10.0.5").toBe("100.97.0.5");
    expect(remappedAddress("10.11.0.5", "10.10.0.0/16", "100.97.0.0/16"), "outside").toBeUndefined();
    expect(remappedAddress("10.10.0.5", "10.10.0.0/16", "100.97.0.0/24"), "size mismatch").toBeUndefined();
  });
});
