/**
 * The overlay interface and the site routes on a fake host: a fresh interface gets a new session
 * epoch (an existing one keeps its epoch); another site's gateway's routes are routed into the
 * interface (proto 87) and become that peer's allowed IPs; a route over this host's own networks
 * is refused, logged once and reported in the status; routes no longer advertised are removed.
 */
import { afterEach, describe, expect, it } from "vitest";
import { loadState } from "../state/store.js";
import { OVERLAY_CIDR, enrolledNode, peerRecord, peerSet, type Node } from "./testing.js";

const nodes: Node[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.cleanup();
});
async function node(...args: Parameters<typeof enrolledNode>): Promise<Node> {
  const n = await enrolledNode(...args);
  nodes.push(n);
  return n;
}

const weftRoutes = (n: Node) => n.host.routes.filter((r) => r.protocol === "87").map((r) => r.dst).sort();

describe("reconcile/interface", () => {
  it("interface - a fresh interface gets a new session epoch; bringing up an existing one keeps it", async () => {
    const n = await node();
    expect(n.state.current.sessionEpoch, "epoch before").toBeUndefined();
    await n.iface.bringUp([]);
    const first = n.state.current.sessionEpoch;
    expect(first, "epoch after creating the interface").toMatch(/^[0-9a-f]{16}$/);
    expect((await loadState(n.dir))?.sessionEpoch, "epoch in state.json").toBe(first);
    expect(weftRoutes(n), "routes").toEqual([OVERLAY_CIDR]);

    await n.iface.bringUp([]);
    expect(n.state.current.sessionEpoch, "epoch after a restart with the interface in place").toBe(first);

    n.host.exists = false; // a reboot
    n.host.routes = [];
    await n.iface.bringUp([]);
    expect(n.state.current.sessionEpoch, "epoch after the interface was recreated").not.toBe(first);
  });
});

describe("reconcile/site-routes", () => {
  it("site routes - another site's gateway's routes are routed and allowed; this host's own network is refused once", async () => {
    const n = await node({ n: 1, site: "aws", host: { otherRoutes: [{ dst: "10.10.0.0/16", dev: "eth0" }] } });
    await n.iface.bringUp((await n.siteRoutes.restore([])).routes);
    const me = peerRecord(1, "aws");
    const gw = peerRecord(9, "onprem", { endpoints: { public: "198.19.4.2:51820" }, siteRoutes: ["192.168.50.0/24", "10.10.5.0/24"] });
    n.peers.submit(peerSet([me, gw], 5));
    await n.peers.idle();

    expect(weftRoutes(n), "routes through the interface").toEqual([OVERLAY_CIDR, "192.168.50.0/24"].sort());
    expect(n.host.peers?.find((p) => p.publicKey === gw.wireguardPublicKey)?.allowedIps.sort(), "gateway's allowed IPs").toEqual(["100.64.0.9/32", "192.168.50.0/24"]);
    const { siteRoutes, refusedSiteRoutes, gatewayFor } = n.status.current;
    expect(siteRoutes, "status siteRoutes").toEqual([{ cidr: "192.168.50.0/24", gateway: gw.name }]);
    expect(refusedSiteRoutes?.map((r) => r.cidr), "status refusedSiteRoutes").toEqual(["10.10.5.0/24"]);
    expect(refusedSiteRoutes?.[0]?.reason, "refusal reason").toMatch(/10\.10\.0\.0\/16, which this host routes without the overlay/);
    expect(gatewayFor, "status gatewayFor").toEqual([]);

    n.peers.submit(peerSet([me, gw], 6));
    await n.peers.idle();
    const warnings = n.lines.filter((l) => l.msg === "refusing advertised site routes");
    expect(warnings.length, "refusal warnings after two equal sets").toBe(1);

    // The gateway stops advertising: its route leaves the interface and the peer.
    n.peers.submit(peerSet([me, { ...gw, siteRoutes: [] }], 7));
    await n.peers.idle();
    expect(weftRoutes(n), "routes after the gateway stopped advertising").toEqual([OVERLAY_CIDR]);
    expect(n.host.peers?.find((p) => p.publicKey === gw.wireguardPublicKey)?.allowedIps, "gateway's allowed IPs").toEqual(["100.64.0.9/32"]);
    expect(n.status.current.siteRoutes, "status siteRoutes").toEqual([]);
  });

  it("site routes - fail static: the cached gateway's routes are routed when the interface comes up", async () => {
    const gw = peerRecord(9, "onprem", { endpoints: { public: "198.19.4.2:51820" }, siteRoutes: ["192.168.50.0/24"] });
    const n = await node({ n: 1, site: "aws" });
    const taken = await n.siteRoutes.restore([peerRecord(1, "aws"), gw]);
    await n.iface.bringUp(taken.routes);
    expect(weftRoutes(n), "routes right after bring-up").toEqual([OVERLAY_CIDR, "192.168.50.0/24"].sort());
  });

  it("site routes - this host's routes are read only when another site's gateway advertises some", async () => {
    const n = await node({ n: 1, site: "aws" });
    const mainTableReads = () => n.runner.calls.filter((c) => c.argv.join(" ") === "ip -j -4 route show table main").length;
    const sameSite = peerRecord(8, "aws", { siteRoutes: ["172.31.0.0/16"] });
    const got = await n.siteRoutes.decide([peerRecord(1, "aws"), peerRecord(2, "gcp", { endpoints: { public: "198.51.100.2:51820" } }), sameSite]);
    expect(got.routes, "nothing to take").toEqual([]);
    expect(mainTableReads(), "no other site's gateway: no read").toBe(0);
    const gw = peerRecord(9, "onprem", { endpoints: { public: "198.19.4.2:51820" }, siteRoutes: ["192.168.50.0/24"] });
    expect((await n.siteRoutes.decide([peerRecord(1, "aws"), gw])).routes).toEqual(["192.168.50.0/24"]);
    expect(mainTableReads(), "a gateway in another site: its routes are checked against this host's").toBe(1);
  });

  it("site routes - a route over a tunnel's endpoint or the overlay is refused; the same site's gateway is skipped", async () => {
    const n = await node({ n: 1, site: "aws" });
    const records = [
      peerRecord(1, "aws"),
      peerRecord(8, "aws", { siteRoutes: ["172.31.0.0/16"] }),
      peerRecord(9, "onprem", { endpoints: { public: "198.19.4.2:51820" }, siteRoutes: ["198.19.4.0/24", "100.64.8.0/24"] }),
    ];
    const got = await n.siteRoutes.decide(records);
    expect(got.routes, "taken").toEqual([]);
    expect(got.refused.map((r) => `${r.cidr}: ${r.reason}`), "refused").toEqual([
      "198.19.4.0/24: holds 198.19.4.2, the endpoint of peer onprem-9: its tunnel would loop",
      `100.64.8.0/24: overlaps the overlay range ${OVERLAY_CIDR}`,
    ]);
  });
});
