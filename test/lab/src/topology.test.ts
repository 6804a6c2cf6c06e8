/** Unit tests of the topology description: names, sites, address plan. No root needed. */
import { describe, expect, it } from "vitest";
import { LabOptionsError } from "./errors.js";
import { labTopology, topologyNamespaces } from "./topology.js";

/** Whether dotted-quad `addr` lies inside `cidr`. */
function inCidr(addr: string, cidr: string): boolean {
  const [base, len] = cidr.split("/") as [string, string];
  const toInt = (a: string): number => a.split(".").reduce((n, o) => n * 256 + Number(o), 0);
  const mask = Number(len) === 0 ? 0 : (0xffffffff << (32 - Number(len))) >>> 0;
  return ((toInt(addr) & mask) >>> 0) === ((toInt(base) & mask) >>> 0);
}

function duplicates(xs: readonly string[]): string[] {
  return xs.filter((x, i) => xs.indexOf(x) !== i);
}

describe("lab - topology", () => {
  const t = labTopology();

  it("lab - topology names and namespaces are unique and prefixed", () => {
    const names = [...t.hosts.map((h) => h.name), ...t.gateways.map((g) => g.name), t.controller.name, t.inet.name];
    expect(duplicates(names), `duplicate names: got ${duplicates(names)}, want none`).toEqual([]);
    const netns = topologyNamespaces(t);
    expect(duplicates(netns), `duplicate namespaces: got ${duplicates(netns)}, want none`).toEqual([]);
    for (const ns of netns) expect(ns.startsWith("weft-"), `namespace ${ns}: want prefix "weft-"`).toBe(true);
    expect(netns, "namespaces").toContain("weft-inet");
    expect(netns, "namespaces").toContain("weft-ctl");
    expect(netns, "namespaces").toContain("weft-gw-onprem");
  });

  it("lab - topology sites have the planned CIDRs and NAT kinds", () => {
    const got = t.sites.map((s) => [s.name, s.privateCidr, s.publicCidr ?? null, s.nat]);
    const want = [
      ["aws", "10.10.0.0/16", "198.18.1.0/24", "one-to-one"],
      ["azure", "10.20.0.0/16", "198.18.2.0/24", "one-to-one"],
      ["gcp", "10.30.0.0/16", "198.18.3.0/24", "one-to-one"],
      ["onprem", "192.168.50.0/24", null, "masquerade"],
    ];
    expect(got, `sites: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`).toEqual(want);
  });

  it("lab - topology has at least two hosts per cloud and one on-prem", () => {
    for (const site of ["aws", "azure", "gcp"]) {
      const n = t.hosts.filter((h) => h.site === site).length;
      expect(n >= 2, `${site} hosts: got ${n}, want >= 2`).toBe(true);
    }
    const onprem = t.hosts.filter((h) => h.site === "onprem");
    expect(onprem.map((h) => h.name), "onprem hosts").toEqual(["onprem-1"]);
    expect(onprem[0]?.privateAddress, "onprem-1 private address").toBe("192.168.50.11");
    expect(t.hosts.length, `hosts: got ${t.hosts.length}, want 7`).toBe(7);
  });

  it("lab - topology hosts sit in their site's networks with unique addresses", () => {
    for (const h of t.hosts) {
      const site = t.sites.find((s) => s.name === h.site);
      const gw = t.gateways.find((g) => g.site === h.site);
      expect(site && inCidr(h.privateAddress, site.privateCidr), `${h.name} private ${h.privateAddress}: want in ${site?.privateCidr}`).toBe(true);
      expect(h.gateway, `${h.name} gateway: got ${h.gateway}, want ${gw?.lanAddress}`).toBe(gw?.lanAddress);
      if (site?.publicCidr) {
        expect(h.publicAddress && inCidr(h.publicAddress, site.publicCidr), `${h.name} public ${h.publicAddress}: want in ${site.publicCidr}`).toBe(true);
      }
    }
    const all = [
      ...t.hosts.flatMap((h) => [h.privateAddress, ...(h.publicAddress ? [h.publicAddress] : [])]),
      ...t.gateways.flatMap((g) => [g.lanAddress, g.wanAddress, g.inetAddress]),
      t.controller.address,
      t.controller.gateway,
    ];
    expect(duplicates(all), `duplicate addresses: got ${duplicates(all)}, want none`).toEqual([]);
    expect(t.hosts.find((h) => h.name === "aws-1")?.publicAddress, "aws-1 public").toBe("198.18.1.11");
    expect(t.hosts.find((h) => h.name === "azure-2")?.privateAddress, "azure-2 private").toBe("10.20.0.12");
  });

  it("lab - topology on-prem has no public address and masquerades", () => {
    const onprem = t.hosts.filter((h) => h.site === "onprem");
    for (const h of onprem) expect(h.publicAddress, `${h.name} public: got ${h.publicAddress}, want undefined`).toBeUndefined();
    const gw = t.gateways.find((g) => g.site === "onprem");
    expect(gw?.nat, "onprem gateway NAT").toBe("masquerade");
    expect(gw?.publicCidr, "onprem public block").toBeUndefined();
  });

  it("lab - topology controller is on inet's transit 198.19.0.0/24", () => {
    expect(t.controller, "controller").toMatchObject({ netns: "weft-ctl", address: "198.19.0.2", gateway: "198.19.0.1", prefixLength: 24 });
  });

  it("lab - topology prefix option renames every namespace", () => {
    const wt = labTopology({ prefix: "wt" });
    for (const ns of topologyNamespaces(wt)) expect(ns.startsWith("wt-"), `namespace ${ns}: want prefix "wt-"`).toBe(true);
    expect(wt.hosts.map((h) => h.name), "host names do not depend on the prefix").toEqual(t.hosts.map((h) => h.name));
  });

  it("lab - topology rejects an invalid prefix", () => {
    for (const bad of ["", "WEFT", "we ft", "a-b", "averyveryverylongprefix", "1abc"]) {
      expect(() => labTopology({ prefix: bad }), `prefix ${JSON.stringify(bad)}: want LabOptionsError`).toThrow(LabOptionsError);
    }
  });

  it("lab - topology is pure", () => {
    expect(labTopology(), "two calls").toEqual(labTopology());
  });
});
