/**
 * Which advertised site routes an agent routes into the overlay: other sites' gateways only,
 * never over its own networks or the overlay's ranges, one gateway per range; and the accepted
 * routes become the gateway peer's allowed IPs.
 */
import type { PeerRecord } from "@weft/protocol";
import { describe, expect, it } from "vitest";
import { desiredPeers } from "./desired.js";
import { siteRoutesToTake } from "./site-routes.js";

function gateway(n: number, site: string, siteRoutes: string[]): PeerRecord {
  return {
    version: 1,
    nodeId: `n-${n.toString(16).padStart(16, "0")}`,
    name: `${site}-gw-${n}`,
    site,
    wireguardPublicKey: `${"A".repeat(42)}${n}=`.slice(-44),
    overlayAddress: `100.64.0.${n}`,
    allowedIps: [`100.64.0.${n}/32`],
    siteRoutes,
    endpoints: {},
    updatedAt: "2030-01-01T00:00:00.000Z",
  };
}

const self = { nodeId: "n-00000000000000ff", site: "aws" };
const overlay = ["100.64.0.0/16", "100.80.0.0/12"];
const local = ["10.10.0.0/16", "172.17.0.0/16"];

describe("siteRoutesToTake", () => {
  it("site routes - another site's gateway's routes are taken; the own site's are not, silently", () => {
    const got = siteRoutesToTake({ self, peers: [gateway(1, "gcp", ["10.30.0.0/16"]), gateway(2, "aws", ["10.10.0.0/16"])], overlay, local });
    expect(got.routes, "routes").toEqual(["10.30.0.0/16"]);
    expect(Object.fromEntries(got.byNode), "by gateway").toEqual({ [gateway(1, "gcp", []).nodeId]: ["10.30.0.0/16"] });
    expect(got.refused, "refused").toEqual([]);
  });

  it("site routes - ranges over this host's own networks or the overlay, or already routed to another gateway, are refused with the reason", () => {
    const got = siteRoutesToTake({
      self,
      peers: [gateway(1, "gcp", ["10.30.0.0/16", "10.0.0.0/8", "100.64.0.0/10"]), gateway(2, "azure", ["10.30.128.0/17", "192.168.0.0/24"]), gateway(3, "onprem", ["172.17.5.0/24"])],
      overlay,
      local,
    });
    expect(got.routes, "routes").toEqual(["10.30.0.0/16", "192.168.0.0/24"]);
    expect(got.refused, "refused").toEqual([
      { cidr: "10.0.0.0/8", gateway: "gcp-gw-1", reason: "overlaps 10.10.0.0/16, which this host routes without the overlay" },
      { cidr: "100.64.0.0/10", gateway: "gcp-gw-1", reason: "overlaps the overlay range 100.64.0.0/16" },
      { cidr: "10.30.128.0/17", gateway: "azure-gw-2", reason: "overlaps 10.30.0.0/16, already routed to gateway gcp-gw-1" },
      { cidr: "172.17.5.0/24", gateway: "onprem-gw-3", reason: "overlaps 172.17.0.0/16, which this host routes without the overlay" },
    ]);
  });

  it("site routes - a range holding the endpoint a tunnel is sent to is refused: the tunnel would loop", () => {
    const got = siteRoutesToTake({ self, peers: [gateway(1, "gcp", ["198.18.0.0/16", "10.30.0.0/16"])], overlay, local, endpoints: [{ address: "198.18.3.11", peer: "gcp-1" }] });
    expect(got.routes, "routes").toEqual(["10.30.0.0/16"]);
    expect(got.refused, "refused").toEqual([{ cidr: "198.18.0.0/16", gateway: "gcp-gw-1", reason: "holds 198.18.3.11, the endpoint of peer gcp-1: its tunnel would loop" }]);
  });

  it("site routes - a range over the controller's address, or public space the controller did not allow for that gateway, is refused", () => {
    const controller = [{ address: "198.19.0.2", what: "API and NATS" }];
    const gw = { ...gateway(1, "gcp", ["128.0.0.0/1", "198.19.0.0/24", "203.0.113.0/24", "198.51.100.0/24", "10.30.0.0/16"]), explicitSiteRoutes: ["198.51.100.0/24"] };
    const got = siteRoutesToTake({ self, peers: [gw], overlay, local, controller });
    expect(got.routes, "routes").toEqual(["10.30.0.0/16", "198.51.100.0/24"]);
    expect(got.refused, "refused").toEqual([
      { cidr: "128.0.0.0/1", gateway: "gcp-gw-1", reason: "covers the controller's API and NATS address 198.19.0.2" },
      { cidr: "198.19.0.0/24", gateway: "gcp-gw-1", reason: "covers the controller's API and NATS address 198.19.0.2" },
      { cidr: "203.0.113.0/24", gateway: "gcp-gw-1", reason: "outside private and CGNAT space, and the controller did not allow it for this site" },
    ]);
    const elsewhere = siteRoutesToTake({ self, peers: [{ ...gw, siteRoutes: ["1.0.0.0/8"] }], overlay, local, controller: [] });
    expect(elsewhere.refused.map((r) => r.reason), "a public /8 over nothing of this host's").toEqual(["outside private and CGNAT space, and the controller did not allow it for this site"]);
  });

  it("site routes - a gateway's accepted routes are its WireGuard allowed IPs, after its own address", () => {
    const gw = gateway(1, "gcp", ["10.30.0.0/16", "100.64.0.0/10"]);
    const taken = siteRoutesToTake({ self, peers: [gw], overlay, local });
    const [peer] = desiredPeers({ ...self, behindNat: false, keepaliveSeconds: 25 }, [gw], taken.byNode);
    expect(peer?.allowedIps, "allowed IPs").toEqual(["100.64.0.1/32", "10.30.0.0/16"]);
  });
});
