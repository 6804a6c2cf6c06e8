import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { POLICY_MAP_CAPACITY, type NodePolicyRecord, type PeerRecord } from "@weft/protocol";
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
  const rec = (entries: NodePolicyRecord["entries"]): NodePolicyRecord => ({
    version: 2,
    nodeId: peer(1).nodeId,
    localIdentities: [257],
    policies: ["p"],
    defaultDeny: [257],
    entries,
    entryCount: entries.length,
    mapEntries: 0,
    compiledAt: "2026-01-01T00:00:00Z",
  });

  it("desired policy - intervals become the port prefixes that cover them exactly; a missing record means no policy", () => {
    expect(desiredPolicy(rec([[300, 257, 6, 5432, 5432, 1], [301, 257, 0, 0, 65535, 2], [300, 257, 17, 1000, 1999, 1]]))).toEqual({
      defaultDeny: [257],
      entries: [
        { srcId: 300, dstId: 257, proto: 6, port: 5432, portBits: 16, verdict: "allow" },
        { srcId: 301, dstId: 257, proto: 0, port: 0, portBits: 0, verdict: "deny" },
        // 1000-1999: 1000-1007 /13, 1008-1023 /12, 1024-1535 /7, 1536-1791 /8, 1792-1919 /9, 1920-1983 /10, 1984-1999 /12
        { srcId: 300, dstId: 257, proto: 17, port: 1000, portBits: 13, verdict: "allow" },
        { srcId: 300, dstId: 257, proto: 17, port: 1008, portBits: 12, verdict: "allow" },
        { srcId: 300, dstId: 257, proto: 17, port: 1024, portBits: 7, verdict: "allow" },
        { srcId: 300, dstId: 257, proto: 17, port: 1536, portBits: 8, verdict: "allow" },
        { srcId: 300, dstId: 257, proto: 17, port: 1792, portBits: 9, verdict: "allow" },
        { srcId: 300, dstId: 257, proto: 17, port: 1920, portBits: 10, verdict: "allow" },
        { srcId: 300, dstId: 257, proto: 17, port: 1984, portBits: 12, verdict: "allow" },
      ],
    });
    expect(desiredPolicy(null)).toEqual({ entries: [], defaultDeny: [] });
  });

  it("desired policy - overlapping intervals of one protocol are resolved again, deny winning, so each port has one verdict", () => {
    const got = desiredPolicy(rec([[300, 257, 6, 0, 65535, 1], [300, 257, 6, 22, 22, 2]]));
    const verdictOf = (port: number) =>
      got.entries.filter((e) => e.proto === 6 && port >> (16 - e.portBits) === e.port >> (16 - e.portBits)).map((e) => e.verdict);
    expect([verdictOf(21), verdictOf(22), verdictOf(23), verdictOf(65535)], "verdicts of tcp 21, 22, 23, 65535").toEqual([["allow"], ["deny"], ["allow"], ["allow"]]);
  });

  it("desired policy - the datapath map holds POLICY_MAP_CAPACITY prefixes (bpf/progs/lib/policy.h)", async () => {
    const h = await readFile(fileURLToPath(new URL("../../../bpf/progs/lib/policy.h", import.meta.url)), "utf8");
    const block = /struct \{[^}]*BPF_MAP_TYPE_LPM_TRIE[^}]*max_entries, (\d+)\)[^}]*\} weft_policy_lpm/.exec(h);
    expect(Number(block?.[1]), "max_entries of weft_policy_lpm").toBe(POLICY_MAP_CAPACITY);
  });
});
