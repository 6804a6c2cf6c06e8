/** Unit tests of the per-namespace desired state: interfaces, veth pairs, routes, NAT rules. */
import { describe, expect, it } from "vitest";
import { LAB_MTU, labNetwork, type LinkSpec, type NamespaceSpec } from "./network.js";
import { labTopology } from "./topology.js";

const IFNAMSIZ_MAX = 15;

describe("lab - network", () => {
  const t = labTopology();
  const specs = labNetwork(t);
  const byNs = new Map(specs.map((s) => [s.netns, s]));
  const spec = (netns: string): NamespaceSpec => {
    const s = byNs.get(netns);
    if (!s) throw new Error(`no spec for ${netns}`);
    return s;
  };

  it("lab - network covers every namespace once, with lo", () => {
    expect(specs.length, `specs: got ${specs.length}, want 20 (13 + 7 workloads)`).toBe(20);
    expect(byNs.size, "distinct namespaces").toBe(specs.length);
    for (const s of specs) expect(s.links.some((l) => l.kind === "loopback"), `${s.netns}: want lo`).toBe(true);
  });

  it("lab - network interface names fit in 15 characters and are unique per namespace", () => {
    for (const s of specs) {
      const names = s.links.map((l) => l.name);
      for (const n of names) expect(n.length <= IFNAMSIZ_MAX, `${s.netns} ${n}: got ${n.length} chars, want <= 15`).toBe(true);
      expect(new Set(names).size, `${s.netns}: duplicate interface in ${names}`).toBe(names.length);
    }
  });

  it("lab - network veth pairs are reciprocal, created once, MTU 1500", () => {
    const veths = specs.flatMap((s) =>
      s.links.filter((l): l is Extract<LinkSpec, { kind: "veth" }> => l.kind === "veth").map((l) => ({ netns: s.netns, l })),
    );
    for (const { netns, l } of veths) {
      expect(l.mtu, `${netns} ${l.name} mtu`).toBe(LAB_MTU);
      const peer = spec(l.peer.netns).links.find((p) => p.name === l.peer.name);
      expect(peer?.kind, `${netns} ${l.name}: peer ${l.peer.netns}/${l.peer.name} kind`).toBe("veth");
      if (peer?.kind !== "veth") continue;
      expect(peer.peer, `${l.peer.netns}/${peer.name}: want peer ${netns}/${l.name}`).toEqual({ netns, name: l.name });
      expect(peer.createsPair !== l.createsPair, `${netns}/${l.name}: exactly one end creates the pair`).toBe(true);
    }
    expect(LAB_MTU, "LAB_MTU").toBe(1500);
  });

  it("lab - network addresses and routes follow the plan", () => {
    const aws1 = spec("weft-aws-1");
    expect(aws1.addresses, "aws-1 addresses").toEqual([{ dev: "eth0", address: "10.10.0.11", prefixLength: 16 }]);
    expect(aws1.routes, "aws-1 routes").toEqual([{ dst: "default", via: "10.10.0.1" }]);
    const gw = spec("weft-gw-azure");
    expect(gw.addresses, "gw-azure addresses").toEqual([
      { dev: "wan0", address: "198.19.2.2", prefixLength: 24 },
      { dev: "br0", address: "10.20.0.1", prefixLength: 16 },
    ]);
    expect(gw.routes, "gw-azure routes").toEqual([{ dst: "default", via: "198.19.2.1" }]);
    const port = gw.links.find((l) => l.name === "lan-azure-1");
    expect(port, "gw-azure port for azure-1").toMatchObject({ kind: "veth", master: "br0", peer: { netns: "weft-azure-1", name: "eth0" } });
  });

  it("lab - network inet routes only the public blocks and has no default route", () => {
    const inet = spec("weft-inet");
    const got = inet.routes.map((r) => `${r.dst} via ${r.via}`);
    const want = ["198.18.1.0/24 via 198.19.1.2", "198.18.2.0/24 via 198.19.2.2", "198.18.3.0/24 via 198.19.3.2"];
    expect(got, `inet routes: got ${got}, want ${want}`).toEqual(want);
    expect(inet.sysctls, "inet forwards").toContainEqual({ key: "net.ipv4.ip_forward", value: "1", optional: false });
  });

  it("lab - network cloud gateways map each host 1:1", () => {
    const rules = spec("weft-gw-aws").rules.map((r) => `${r.table} ${r.chain} ${r.spec.join(" ")}`);
    for (const want of [
      "nat PREROUTING -d 198.18.1.11/32 -j DNAT --to-destination 10.10.0.11",
      "nat POSTROUTING -s 10.10.0.11/32 -o wan0 -j SNAT --to-source 198.18.1.11",
      "nat PREROUTING -d 198.18.1.12/32 -j DNAT --to-destination 10.10.0.12",
      "nat POSTROUTING -s 10.10.0.12/32 -o wan0 -j SNAT --to-source 198.18.1.12",
    ]) {
      expect(rules, `gw-aws rules: want ${want}`).toContain(want);
    }
    expect(rules.some((r) => r.includes("MASQUERADE")), "gw-aws: want no MASQUERADE").toBe(false);
  });

  it("lab - network on-prem gateway masquerades and admits nothing new inbound", () => {
    const rules = spec("weft-gw-onprem").rules.map((r) => `${r.table} ${r.chain} ${r.spec.join(" ")}`);
    expect(rules, "gw-onprem rules").toEqual([
      "nat POSTROUTING -s 192.168.50.0/24 -o wan0 -j MASQUERADE",
      "filter FORWARD -i wan0 -m conntrack --ctstate NEW,INVALID -j DROP",
      "filter INPUT -i wan0 -m conntrack --ctstate NEW,INVALID -j DROP",
    ]);
  });

  it("lab - network natSites adds branch (port-keeping masquerade) and cgnat (a random port per flow), one host each", () => {
    const t = labTopology({ layout: { natSites: true } });
    const byName = new Map(labNetwork(t).map((s) => [s.netns, s]));
    const rules = (ns: string) => byName.get(ns)!.rules.filter((r) => r.table === "nat").map((r) => r.spec.join(" "));
    expect(rules("weft-gw-branch"), "branch").toEqual(["-s 192.168.60.0/24 -o wan0 -j MASQUERADE"]);
    expect(rules("weft-gw-cgnat"), "cgnat").toEqual(["-s 192.168.70.0/24 -o wan0 -j MASQUERADE --random-fully"]);
    expect(t.hosts.filter((h) => h.site === "branch" || h.site === "cgnat").map((h) => `${h.name} ${h.privateAddress} ${h.workloads.length}`), "hosts").toEqual(["branch-1 192.168.60.11 1", "cgnat-1 192.168.70.11 1"]);
    expect(t.hosts.find((h) => h.name === "aws-2")?.roles, "aws-2 is the relay").toEqual(["relay"]);
    expect(labTopology().hosts.some((h) => h.roles.includes("relay")), "no relay in the default lab").toBe(false);
    expect(labTopology().hosts.length, "the default lab keeps its seven hosts").toBe(7);
  });

  it("lab - network overlap puts azure on aws's network with a machine at 10.10.0.5 in both; mtu shrinks every link of a site", () => {
    const t = labTopology({ layout: { overlap: true, mtu: { branch: 1280, gcp: 1460 }, natSites: true } });
    expect(t.sites.find((x) => x.name === "azure")?.privateCidr, "azure").toBe("10.10.0.0/16");
    const specs2 = new Map(labNetwork(t).map((s) => [s.netns, s]));
    for (const gw of ["weft-gw-aws", "weft-gw-azure"]) expect(specs2.get(gw)!.addresses.map((a) => a.address), gw).toContain("10.10.0.5");
    expect(t.hosts.filter((h) => h.roles.includes("gateway")).map((h) => h.name).sort(), "gateways").toEqual(["aws-1", "azure-1", "gcp-1"]);
    const mtus = (ns: string) => specs2.get(ns)!.links.flatMap((l) => (l.kind === "loopback" ? [] : [`${l.name}=${l.mtu}`]));
    expect(mtus("weft-gw-branch"), "gw-branch").toEqual(["br0=1280", "wan0=1280", "lan-branch-1=1280"]);
    expect(mtus("weft-branch-1"), "branch-1").toEqual(["eth0=1280"]);
    expect(mtus("weft-inet").filter((m) => m.startsWith("to-gcp") || m.startsWith("to-aws")), "inet").toEqual(["to-aws=1500", "to-gcp=1460"]);
  });

  it("lab - network hosts and controller have no sysctls or rules", () => {
    for (const s of specs.filter((s) => s.role === "host" || s.role === "controller")) {
      expect(s.rules, `${s.netns} rules`).toEqual([]);
      expect(s.sysctls, `${s.netns} sysctls`).toEqual([]);
    }
  });
});

describe("lab - network with three controller hosts", () => {
  const t = labTopology({ layout: { controllers: 3 } });
  const specs = labNetwork(t);
  const spec = (netns: string): NamespaceSpec => specs.find((s) => s.netns === netns) ?? (() => { throw new Error(`no spec for ${netns}`); })();

  it("lab - network controllers: 3 puts ctl-1..3 at 198.19.0.11-13 on a bridge in inet instead of ctl", () => {
    expect(t.controllers.map((c) => [c.name, c.netns, c.address]), "controller hosts").toEqual([
      ["ctl-1", "weft-ctl-1", "198.19.0.11"],
      ["ctl-2", "weft-ctl-2", "198.19.0.12"],
      ["ctl-3", "weft-ctl-3", "198.19.0.13"],
    ]);
    expect(t.controller.name, "the controller agents enroll with").toBe("ctl-1");
    expect(specs.some((s) => s.netns === "weft-ctl"), "a ctl namespace besides ctl-1..3").toBe(false);
    const inet = spec("weft-inet");
    expect(inet.links.find((l) => l.name === "br-ctl")?.kind, "inet's controller bridge").toBe("bridge");
    for (const c of t.controllers) {
      expect(inet.links.find((l) => l.name === c.inetInterface), `inet's port for ${c.name}`).toMatchObject({ kind: "veth", master: "br-ctl", peer: { netns: c.netns, name: "eth0" }, createsPair: true });
      const ctl = spec(c.netns);
      expect(ctl.addresses, `${c.name} addresses`).toEqual([{ dev: "eth0", address: c.address, prefixLength: 24 }]);
      expect(ctl.routes, `${c.name} routes`).toEqual([{ dst: "default", via: "198.19.0.1" }]);
    }
    expect(inet.addresses.filter((a) => a.address === "198.19.0.1"), "inet's address on the controllers' network").toEqual([{ dev: "br-ctl", address: "198.19.0.1", prefixLength: 24 }]);
    const sites = labNetwork(labTopology()).filter((s) => s.role !== "controller" && s.role !== "inet").map((s) => s.netns);
    expect(specs.filter((s) => s.role !== "controller" && s.role !== "inet").map((s) => s.netns), "every other namespace unchanged").toEqual(sites);
  });
});
