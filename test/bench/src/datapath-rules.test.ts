import { describe, expect, it } from "vitest";
import { FILLER_ID_BASE, fillerAddress, IPTABLES_EMPTY, policyRuleSet, type Flow } from "./datapath-rules.js";

const measured: Flow[] = (["tcp", "udp"] as const).map((proto) => ({ srcAddr: "100.64.0.1", srcId: 1000, dstAddr: "100.64.0.2", dstId: 2000, proto, dport: 5201 }));

describe("datapath rules", () => {
  it("datapath rules - N rules are N policy entries and N iptables ACCEPTs, the measured flows last, then one DROP", () => {
    const set = policyRuleSet({ rules: 1000, measured, iface: "wdb-wgb" });
    expect(set.policy.length, "policy entries").toBe(1000);
    expect(set.filler.length, "fillers").toBe(998);
    const rules = set.iptables.split("\n").filter((l) => l.startsWith("-A INPUT"));
    expect(rules.length, "iptables rules").toBe(1001);
    expect(rules.at(-3), "measured TCP second to last ACCEPT").toBe("-A INPUT -i wdb-wgb -s 100.64.0.1/32 -d 100.64.0.2/32 -p tcp -m tcp --dport 5201 -j ACCEPT");
    expect(rules.at(-2)).toBe("-A INPUT -i wdb-wgb -s 100.64.0.1/32 -d 100.64.0.2/32 -p udp -m udp --dport 5201 -j ACCEPT");
    expect(rules.at(-1), "last rule").toBe("-A INPUT -i wdb-wgb -j DROP");
    expect(set.iptables.startsWith("*filter\n") && set.iptables.endsWith("COMMIT\n"), "a whole filter table").toBe(true);
    expect(set.policy.at(-2)?.[0]).toEqual({ srcId: 1000, dstId: 2000, proto: 6, port: 5201, portBits: 16 });
    expect(set.policy.at(-1)?.[0]).toEqual({ srcId: 1000, dstId: 2000, proto: 17, port: 5201, portBits: 16 });
    expect(set.defaultDeny, "default deny on the destination").toEqual([2000]);
  });

  it("datapath rules - fillers are distinct, never the measured pair or port, and each source is in the ipcache", () => {
    const set = policyRuleSet({ rules: 10_000, measured, iface: "wg" });
    const keys = new Set(set.policy.map(([k]) => `${k.srcId}/${k.dstId}/${k.proto}/${k.port}/${k.portBits}`));
    expect(keys.size, "distinct policy keys").toBe(10_000);
    for (const f of set.filler) {
      expect(f.srcId).toBeGreaterThanOrEqual(FILLER_ID_BASE);
      expect(f.dport).not.toBe(5201);
    }
    const addrs = new Set(set.filler.map((f) => f.srcAddr));
    expect(addrs.size, "distinct filler sources").toBe(set.filler.length);
    expect(set.ipcache.length, "ipcache: fillers + both measured ends").toBe(set.filler.length + 2);
    expect(set.ipcache).toContainEqual([{ addr: "100.64.0.2", prefixlen: 32 }, { identity: 2000 }]);
  });

  it("datapath rules - 0 rules: no policy, no default deny, an empty filter table, the ipcache still names both ends", () => {
    const set = policyRuleSet({ rules: 0, measured, iface: "wg" });
    expect([set.policy, set.defaultDeny, set.filler]).toEqual([[], [], []]);
    expect(set.iptables).toBe(IPTABLES_EMPTY);
    expect(set.ipcache.map(([k]) => k.addr).sort()).toEqual(["100.64.0.1", "100.64.0.2"]);
  });

  it("fillerAddress - skips network and broadcast addresses of every /24", () => {
    expect([0, 253, 254, 507, 508].map(fillerAddress)).toEqual(["10.200.0.1", "10.200.0.254", "10.200.1.1", "10.200.1.254", "10.200.2.1"]);
    expect(() => fillerAddress(70_000)).toThrow(RangeError);
  });

  it("policyRuleSet - fewer rules than measured flows is an error", () => {
    expect(() => policyRuleSet({ rules: 1, measured, iface: "wg" })).toThrow(/fewer than the 2 measured flows/);
  });
});
