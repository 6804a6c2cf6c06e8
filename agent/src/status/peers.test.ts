/** Peer stats for the metrics: names from peer records, handshake age, and the path the endpoint shows. */
import type { PeerRecord } from "@weft/protocol";
import { describe, expect, it } from "vitest";
import { peerPath, peerStats } from "./peers.js";

const record = (name: string, key: string, endpoints: PeerRecord["endpoints"]) => ({ name, site: "aws", wireguardPublicKey: key, endpoints }) as PeerRecord;

describe("status/peers", () => {
  it("peers - the path is private, public, nat (an address learned through a NAT) or none", () => {
    const r = record("b", "k", { private: "10.0.0.2:51820", public: "198.18.1.2:51820" });
    expect([peerPath("10.0.0.2:51820", r), peerPath("198.18.1.2:51820", r), peerPath("198.19.4.2:40211", r), peerPath(undefined, r)], "paths").toEqual(["private", "public", "nat", "none"]);
  });

  it("peers - stats name each peer, age its handshake and carry its bytes; an unknown key is named by its prefix", () => {
    const now = new Date("2030-01-01T00:01:00Z");
    const got = peerStats(
      [
        { publicKey: "KEY-B", endpoint: "10.0.0.2:51820", allowedIps: [], latestHandshake: new Date("2030-01-01T00:00:30Z"), rxBytes: 10, txBytes: 20 },
        { publicKey: "UNKNOWNKEY", allowedIps: [], rxBytes: 0, txBytes: 0 },
      ],
      [record("b", "KEY-B", { private: "10.0.0.2:51820" })],
      now,
    );
    expect(got, "stats").toEqual([
      { peer: "b", site: "aws", path: "private", handshakeAgeSeconds: 30, rxBytes: 10, txBytes: 20 },
      { peer: "key:UNKNOWNK", site: "unknown", path: "none", handshakeAgeSeconds: undefined, rxBytes: 0, txBytes: 0 },
    ]);
  });
});
