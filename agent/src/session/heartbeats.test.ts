/** The heartbeat message: what WireGuard shows of each peer, the applied revision and the session epoch. */
import { Heartbeat } from "@weft/protocol";
import { describe, expect, it } from "vitest";
import { PrivateKey } from "../wireguard/keys.js";
import { heartbeat } from "./heartbeats.js";

describe("session/heartbeats", () => {
  it("heartbeat - carries handshakes in seconds, endpoints, bytes each way, revision and epoch, and fits the protocol", () => {
    const now = new Date("2030-01-01T00:00:10.000Z");
    const [a, b] = [PrivateKey.generate().publicKey(), PrivateKey.generate().publicKey()];
    const got = heartbeat({ nodeId: "n-0000000000000001", sessionEpoch: "00000000000000aa" }, 17, [
      { publicKey: a, endpoint: "198.51.100.7:51820", allowedIps: [], latestHandshake: new Date("2030-01-01T00:00:05.900Z"), rxBytes: 1, txBytes: 2 },
      { publicKey: b, allowedIps: [], rxBytes: 0, txBytes: 0 },
    ], now);
    const want = {
      version: 1,
      nodeId: "n-0000000000000001",
      sentAt: now.toISOString(),
      sessionEpoch: "00000000000000aa",
      appliedRevision: 17,
      peers: [{ publicKey: a, lastHandshake: Math.floor(Date.parse("2030-01-01T00:00:05.900Z") / 1000), endpoint: "198.51.100.7:51820", rxBytes: 1, txBytes: 2 }, { publicKey: b, rxBytes: 0, txBytes: 0 }],
    };
    expect(got, `got ${JSON.stringify(got)}`).toEqual(want);
    const parsed = Heartbeat.safeParse(got);
    expect(parsed.error?.issues, "Heartbeat schema issues").toBeUndefined();
    expect("sessionEpoch" in heartbeat({ nodeId: "n-0000000000000001" }, 0, [], now), "no epoch key without an epoch").toBe(false);
  });
});
