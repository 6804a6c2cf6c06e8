/** `weft nodes list`: the PATHS column and the per-peer lines of `--paths`. */
import type { NodeView } from "@weft/protocol";
import { describe, expect, it } from "vitest";
import { pathRows, pathSummary } from "./nodes.js";

const key = (c: string) => `${c.repeat(43)}=`;
function node(id: string, name: string, k: string, peers: NodeView["peers"]): NodeView {
  return {
    version: 1,
    nodeId: id,
    name,
    site: name.split("-")[0]!,
    wireguardPublicKey: key(k),
    natsPublicKey: `U${"A".repeat(55)}`,
    overlayAddress: "100.64.0.1",
    endpoints: {},
    labels: {},
    joinKeyId: "",
    enrolledAt: "",
    status: "online",
    ...(peers ? { peers } : {}),
  };
}

describe("nodes command", () => {
  const relay = node("n-0000000000000009", "aws-2", "R", []);
  const cg = node("n-0000000000000001", "cgnat-1", "C", [
    { publicKey: key("O"), path: "relay", via: "n-0000000000000009", rttMs: 1.234, endpoint: "198.18.1.12:41000" },
    { publicKey: key("R"), path: "direct", rttMs: 0.5, endpoint: "198.18.1.12:51820" },
    { publicKey: key("X"), path: "none" },
  ]);
  const onprem = node("n-0000000000000002", "onprem-1", "O", []);

  it("nodes - PATHS counts a node's peers by path; nothing reported yet shows -", () => {
    expect(pathSummary(cg), "cgnat-1").toBe("1 direct, 1 relay, 1 none");
    expect(pathSummary(node("n-0000000000000003", "x-1", "Y", undefined)), "no heartbeat").toBe("-");
  });

  it("nodes - --paths names the peer and the relay, with the endpoint and RTT", () => {
    const rows = pathRows([cg, relay, onprem]);
    expect(rows, "rows").toEqual([
      ["cgnat-1", "aws-2", "direct", "198.18.1.12:51820", "0.50 ms"],
      ["cgnat-1", "onprem-1", "relay via aws-2", "198.18.1.12:41000", "1.23 ms"],
      ["cgnat-1", `${key("X").slice(0, 8)}…`, "none", "-", "-"],
    ]);
  });
});
