import type { NodePolicyRecord, PeerRecord } from "@weft/protocol";
import { describe, expect, it } from "vitest";
import { desiredIpcache, desiredPolicy, desiredTunnels, wantsVxlan } from "./desired.js";

const KEY = "x".repeat(43) + "=";
function peer(n: number, over: Partial<PeerRecord> = {}): PeerRecord {
  return {
    version: 1,
    nodeId: `n-${String(n).padStart(16, "0")}`,
    name: `h${n}`,
    site: "aws",
    wireguardPublicKey: KEY,
    overlayAddress: `100.64.0.${n}`,
    allowedIps: [`100.64.0.${n}/32`],
    endpoints: { private: `10.10.0.${n}:51820`, public: `198.18.1.${n}:51820` },
    workloadPrefix: `100.80.${n}.0/24`,
    sameSiteTransport: "vxlan",
    updatedAt: "2026-01-01T00:00:00Z",
    ...over,
  };
}
const id = (n: number) => ({ id: 256 + n, spiffeId: `spiffe://weft.internal/ns/shop/sa/s${n}` });

describe("desiredIpcache", () => {
  it("maps node and workload addresses with identities, and leaves out addresses without one", () => {
    const got = desiredIpcache([
      peer(1, { identity: id(1), workloads: [{ name: "web", address: "100.80.1.2", identity: id(5) }] }),
      peer(2),
    ]);
    expect([...got]).toEqual([
      ["100.64.0.1/32", 257],
      ["100.80.1.2/32", 261],
    ]);
  });
});

describe("desiredTunnels", () => {
  it("lists same-site vxlan peers by their private address, never other sites or wireguard-only peers", () => {
    const peers = [peer(1), peer(2), peer(3, { site: "gcp" }), peer(4, { sameSiteTransport: "wireguard" }), peer(5, { sameSiteTransport: undefined })];
    const got = desiredTunnels(peers[0]!.nodeId, peers);
    expect([...got.tunnels]).toEqual([["100.80.2.0/24", "10.10.0.2"]]);
    expect([...got.sources]).toEqual(["10.10.0.2"]);
    expect(wantsVxlan(peers[0]!.nodeId, peers)).toBe(true);
  });

  it("lists nothing when this node's own site does not allow plaintext", () => {
    const peers = [peer(1, { sameSiteTransport: "wireguard" }), peer(2)];
    expect(desiredTunnels(peers[0]!.nodeId, peers).tunnels.size).toBe(0);
    expect(wantsVxlan(peers[0]!.nodeId, peers)).toBe(false);
  });
});

describe("desiredPolicy", () => {
  it("expands compact entries, and a missing record means no policy", () => {
    const record: NodePolicyRecord = {
      version: 1,
      nodeId: peer(1).nodeId,
      localIdentities: [257],
      policies: ["p"],
      defaultDeny: [257],
      entries: [[300, 257, 6, 5432, 1], [301, 257, 0, 0, 2]],
      compiledAt: "2026-01-01T00:00:00Z",
    };
    expect(desiredPolicy(record)).toEqual({
      defaultDeny: [257],
      entries: [
        { srcId: 300, dstId: 257, proto: 6, dport: 5432, verdict: "allow" },
        { srcId: 301, dstId: 257, proto: 0, dport: 0, verdict: "deny" },
      ],
    });
    expect(desiredPolicy(null)).toEqual({ entries: [], defaultDeny: [] });
  });
});
