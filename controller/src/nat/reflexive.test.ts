/** Reflexive endpoints from what public peers see, and the NAT mapping they reveal. */
import type { Heartbeat } from "@weft/protocol";
import { describe, expect, it } from "vitest";
import { mappingOf, reflexiveEndpoints, withReflexive, type ObservedNode } from "./reflexive.js";

const key = (c: string) => `${c.repeat(43)}=`;
const NOW = 1_000_000;

function node(nodeId: string, site: string, k: string, pub?: string): ObservedNode {
  return { nodeId, site, wireguardPublicKey: key(k), endpoints: pub ? { public: pub } : {} };
}
function beat(nodeId: string, peers: { k: string; endpoint?: string; age?: number }[]): Heartbeat {
  return {
    version: 1,
    nodeId,
    sentAt: new Date(NOW * 1000).toISOString(),
    appliedRevision: 1,
    peers: peers.map((p) => ({ publicKey: key(p.k), ...(p.endpoint ? { endpoint: p.endpoint } : {}), ...(p.age !== undefined ? { lastHandshake: NOW - p.age } : {}) })),
  };
}

const aws = node("n-0000000000000001", "aws", "A", "198.18.1.11:51820");
const gcp = node("n-0000000000000002", "gcp", "B", "198.18.3.11:51820");
const aws2 = node("n-0000000000000003", "aws", "C", "198.18.1.12:51820");
const onprem = node("n-0000000000000004", "onprem", "D");
const branch = node("n-0000000000000005", "branch", "E");

describe("nat/reflexive", () => {
  it("reflexive - two public peers seeing one address:port: that endpoint, endpoint-independent", () => {
    const hb = new Map([
      [aws.nodeId, beat(aws.nodeId, [{ k: "D", endpoint: "198.19.4.2:51820", age: 5 }])],
      [gcp.nodeId, beat(gcp.nodeId, [{ k: "D", endpoint: "198.19.4.2:51820", age: 20 }])],
    ]);
    const got = reflexiveEndpoints([aws, gcp, onprem], hb, NOW).get(onprem.nodeId);
    expect(got, "onprem").toEqual({ reflexive: ["198.19.4.2:51820"], mapping: "endpoint-independent" });
  });

  it("reflexive - different ports per observer: endpoint-dependent, most seen first", () => {
    const hb = new Map([
      [aws.nodeId, beat(aws.nodeId, [{ k: "D", endpoint: "198.19.6.2:40001", age: 1 }])],
      [gcp.nodeId, beat(gcp.nodeId, [{ k: "D", endpoint: "198.19.6.2:53000", age: 1 }])],
      [aws2.nodeId, beat(aws2.nodeId, [{ k: "D", endpoint: "198.19.6.2:53000", age: 1 }])],
    ]);
    const got = reflexiveEndpoints([aws, gcp, aws2, onprem], hb, NOW).get(onprem.nodeId);
    expect(got, "onprem").toEqual({ reflexive: ["198.19.6.2:53000", "198.19.6.2:40001"], mapping: "endpoint-dependent" });
  });

  it("reflexive - stale sessions, same-site observers, NAT'd observers and garbage are not evidence", () => {
    const hb = new Map([
      [aws.nodeId, beat(aws.nodeId, [{ k: "D", endpoint: "198.19.4.2:51820", age: 181 }])], // stale
      [gcp.nodeId, beat(gcp.nodeId, [{ k: "D", endpoint: "not-an-endpoint", age: 1 }])], // garbage
      [branch.nodeId, beat(branch.nodeId, [{ k: "D", endpoint: "198.19.4.2:51820", age: 1 }])], // not public
      [aws2.nodeId, beat(aws2.nodeId, [{ k: "D", age: 1 }])], // no endpoint
    ]);
    const got = reflexiveEndpoints([aws, gcp, aws2, onprem, branch], hb, NOW);
    expect(got.get(onprem.nodeId), "onprem").toEqual({ reflexive: [], mapping: undefined });
    expect(got.has(aws.nodeId), "a public node gets no reflexive view").toBe(false);
    const sameSite = node("n-0000000000000006", "aws", "F");
    const hb2 = new Map([[aws.nodeId, beat(aws.nodeId, [{ k: "F", endpoint: "10.10.0.13:51820", age: 1 }])]]);
    expect(reflexiveEndpoints([aws, sameSite], hb2, NOW).get(sameSite.nodeId), "same-site observer").toEqual({ reflexive: [], mapping: undefined });
  });

  it("reflexive - mapping needs two observations", () => {
    expect(mappingOf([]), "none").toBeUndefined();
    expect(mappingOf(["1.2.3.4:5"]), "one").toBeUndefined();
    expect(mappingOf(["1.2.3.4:5", "1.2.3.4:5"]), "same").toBe("endpoint-independent");
    expect(mappingOf(["1.2.3.4:5", "1.2.3.4:6"]), "different").toBe("endpoint-dependent");
  });

  it("reflexive - withReflexive changes only what differs, keeps private/public, and never forgets on silence", () => {
    const e = { private: "192.168.50.11:51820", reflexive: ["198.19.4.2:51820"], mapping: "endpoint-independent" as const };
    expect(withReflexive(e, { reflexive: ["198.19.4.2:51820"], mapping: "endpoint-independent" }), "same view").toBeUndefined();
    expect(withReflexive(e, { reflexive: [], mapping: undefined }), "no observation: kept").toBeUndefined();
    expect(withReflexive(e, { reflexive: ["198.19.4.2:61000"], mapping: undefined }), "one observation: the mapping is kept").toEqual({ ...e, reflexive: ["198.19.4.2:61000"] });
    const edm = { reflexive: ["198.19.6.2:1000", "198.19.6.2:2000"], mapping: "endpoint-dependent" as const };
    expect(withReflexive(edm, { reflexive: ["198.19.6.2:3000", "198.19.6.2:1000"], mapping: "endpoint-dependent" }), "per-destination NAT, new ports: not rewritten").toBeUndefined();
    expect(withReflexive(edm, { reflexive: ["198.19.6.2:51820"], mapping: "endpoint-independent" }), "the NAT keeps ports now").toEqual({ reflexive: ["198.19.6.2:51820"], mapping: "endpoint-independent" });
    expect(withReflexive({ private: "192.168.50.11:51820" }, { reflexive: ["198.19.4.2:1"], mapping: "endpoint-dependent" }), "learned").toEqual({
      private: "192.168.50.11:51820",
      reflexive: ["198.19.4.2:1"],
      mapping: "endpoint-dependent",
    });
  });
});
