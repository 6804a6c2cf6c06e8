/**
 * desiredPeers: which endpoint and keepalive each peer gets, from where this
 * node and the peer sit (site, NAT).
 */
import type { PeerRecord } from "@weft/protocol";
import { describe, expect, it } from "vitest";
import { generateKeyPair } from "../wireguard/keys.js";
import { desiredPeers, tunnelEndpoints, type Self } from "./desired.js";

let seq = 0;
function peer(site: string, endpoints: PeerRecord["endpoints"], nodeId = `n-${(++seq).toString(16).padStart(16, "0")}`): PeerRecord {
  const addr = `100.64.0.${seq + 10}`;
  return {
    version: 1,
    nodeId,
    name: `node-${seq}`,
    site,
    wireguardPublicKey: generateKeyPair().publicKey,
    overlayAddress: addr,
    allowedIps: [`${addr}/32`],
    endpoints,
    updatedAt: "2030-01-01T00:00:00.000Z",
  };
}

const publicSelf: Self = { nodeId: "n-00000000000000ff", site: "aws", behindNat: false, keepaliveSeconds: 25 };

function only(self: Self, p: PeerRecord) {
  const got = desiredPeers(self, [p]);
  expect(got.length, `desired peers for one record: got ${got.length}, want 1`).toBe(1);
  return got[0]!;
}

describe("desiredPeers", () => {
  it("desired - a same-site peer is reached on its private endpoint", () => {
    const p = peer("aws", { private: "10.0.1.5:51820", public: "203.0.113.5:51820" });
    expect(only(publicSelf, p).endpoint, "endpoint").toBe("10.0.1.5:51820");
  });

  it("desired - a same-site peer without a private endpoint is reached on its public one", () => {
    const p = peer("aws", { public: "203.0.113.6:51820" });
    expect(only(publicSelf, p).endpoint, "endpoint").toBe("203.0.113.6:51820");
  });

  it("desired - a peer on another site is reached on its public endpoint, never its private one", () => {
    const p = peer("gcp", { private: "10.0.1.5:51820", public: "198.51.100.7:51820" });
    expect(only(publicSelf, p).endpoint, "endpoint").toBe("198.51.100.7:51820");
  });

  it("desired - a peer on another site behind NAT gets no endpoint (it dials us)", () => {
    const p = peer("home", { private: "192.168.1.9:51820" });
    const got = only(publicSelf, p);
    expect(got.endpoint, `endpoint: got ${got.endpoint}, want none`).toBeUndefined();
    expect("endpoint" in got, "endpoint key present").toBe(false);
    expect(got.allowedIps, "allowedIps").toEqual(p.allowedIps);
    expect(got.publicKey, "publicKey").toBe(p.wireguardPublicKey);
  });

  it("desired - a node behind NAT keeps every tunnel open; a public node sets no keepalive", () => {
    const peers = [peer("aws", { private: "10.0.1.5:51820" }), peer("gcp", { public: "198.51.100.7:51820" }), peer("home", {})];
    const natSelf: Self = { ...publicSelf, behindNat: true, keepaliveSeconds: 17 };
    for (const d of desiredPeers(natSelf, peers)) expect(d.persistentKeepalive, `keepalive behind NAT for ${d.publicKey}`).toBe(17);
    for (const d of desiredPeers(publicSelf, peers)) expect(d.persistentKeepalive, `keepalive on a public node for ${d.publicKey}`).toBeUndefined();
  });

  it("desired - this node is never its own peer", () => {
    const me = peer("aws", { private: "10.0.1.1:51820" }, publicSelf.nodeId);
    const other = peer("aws", { private: "10.0.1.2:51820" });
    const got = desiredPeers(publicSelf, [me, other]);
    expect(got.map((d) => d.publicKey), "peers").toEqual([other.wireguardPublicKey]);
  });

  it("desired - output is sorted by public key and does not share arrays with the input", () => {
    const peers = Array.from({ length: 8 }, (_, i) => peer(i % 2 ? "aws" : "gcp", { public: `198.51.100.${i + 1}:51820` }));
    const got = desiredPeers(publicSelf, peers);
    const keys = got.map((d) => d.publicKey);
    expect(keys, "order").toEqual([...keys].sort((a, b) => a.localeCompare(b)));
    expect(desiredPeers(publicSelf, [...peers].reverse()), "same result for any input order").toEqual(got);
    got[0]!.allowedIps.push("0.0.0.0/0");
    const src = peers.find((p) => p.wireguardPublicKey === got[0]!.publicKey)!;
    expect(src.allowedIps, "input allowedIps after mutating the output").toHaveLength(1);
  });

  it("desired - no records, no peers", () => {
    expect(desiredPeers(publicSelf, []), "peers").toEqual([]);
  });
});

describe("tunnelEndpoints", () => {
  it("desired - tunnel endpoints are the addresses tunnels go to, named by peer; none for a peer behind NAT or this node", () => {
    const me = peer("aws", { private: "10.0.1.1:51820" }, publicSelf.nodeId);
    const sameSite = peer("aws", { private: "10.0.1.5:51820", public: "203.0.113.5:51820" });
    const otherSite = peer("gcp", { private: "10.9.0.2:51820", public: "198.51.100.7:51820" });
    const natted = peer("home", { private: "192.168.1.9:51820" });
    const got = tunnelEndpoints(publicSelf, [me, sameSite, otherSite, natted]).sort((a, b) => a.address.localeCompare(b.address));
    const want = [
      { address: "10.0.1.5", peer: sameSite.name },
      { address: "198.51.100.7", peer: otherSite.name },
    ];
    expect(got, `got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`).toEqual(want);
  });
});
