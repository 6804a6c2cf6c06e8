import { describe, expect, it } from "vitest";
import type { ActualPeer, DesiredPeer } from "../wireguard/index.js";
import { REMEMBER_HANDSHAKE_MAX_AGE_MS, rememberEndpoints, withRememberedEndpoints } from "./remembered-endpoints.js";

const key = (n: number) => `${"B".repeat(42)}${"AEIMQUYcgkosw048"[n]}=`;
const NOW = Date.parse("2026-12-07T20:00:00Z");
const actual = (n: number, endpoint: string | undefined, handshakeAgoMs: number | undefined): ActualPeer => ({
  publicKey: key(n),
  ...(endpoint ? { endpoint } : {}),
  allowedIps: [`100.64.0.${n}/32`],
  ...(handshakeAgoMs === undefined ? {} : { latestHandshake: new Date(NOW - handshakeAgoMs) }),
  rxBytes: 0,
  txBytes: 0,
});

describe("remembered endpoints", () => {
  it("remembered endpoints - kept for unaddressed peers with a recent handshake; old handshakes keep what was remembered; others forgotten", () => {
    const unaddressed = new Set([key(1), key(2), key(3)]);
    const first = rememberEndpoints(undefined, [actual(1, "198.51.100.7:40001", 5_000), actual(2, "198.51.100.8:40002", REMEMBER_HANDSHAKE_MAX_AGE_MS + 1), actual(3, undefined, 1_000), actual(4, "203.0.113.4:51820", 1_000)], unaddressed, NOW);
    expect(first, "only peer 1: peer 2's handshake is too old, peer 3 has no endpoint, peer 4 has an endpoint of its own").toEqual({ [key(1)]: "198.51.100.7:40001" });
    expect(rememberEndpoints(first, [actual(1, "198.51.100.7:40001", 1_000)], unaddressed, NOW), "the same again: no change to write").toBeUndefined();
    // The NAT gave peer 1 another port, and peer 1's tunnel then went quiet: the newest stays.
    const moved = rememberEndpoints(first, [actual(1, "198.51.100.7:40999", 2_000)], unaddressed, NOW);
    expect(moved, "the newer mapping").toEqual({ [key(1)]: "198.51.100.7:40999" });
    expect(rememberEndpoints(moved, [actual(1, "198.51.100.7:40999", REMEMBER_HANDSHAKE_MAX_AGE_MS * 10)], unaddressed, NOW), "an old handshake keeps it").toBeUndefined();
    expect(rememberEndpoints(moved, [actual(1, undefined, undefined)], unaddressed, NOW), "a fresh device without it keeps it").toBeUndefined();
    expect(rememberEndpoints(moved, [], new Set([key(2)]), NOW), "peer 1 now has an endpoint of its own (or left): forgotten").toEqual({});
  });

  it("remembered endpoints - given only to desired peers without an endpoint that WireGuard has none for either", () => {
    const desired: DesiredPeer[] = [
      { publicKey: key(1), allowedIps: ["100.64.0.1/32"] },
      { publicKey: key(2), allowedIps: ["100.64.0.2/32"] },
      { publicKey: key(3), endpoint: "203.0.113.3:51820", allowedIps: ["100.64.0.3/32"] },
      { publicKey: key(4), allowedIps: ["100.64.0.4/32"] },
    ];
    const remembered = { [key(1)]: "198.51.100.7:40001", [key(2)]: "198.51.100.8:40002", [key(3)]: "198.51.100.9:40003" };
    // Peer 2 is on the device with an endpoint it learned since: newer than the remembered one.
    const { peers, given } = withRememberedEndpoints(desired, [actual(1, undefined, undefined), actual(2, "198.51.100.8:41111", 1_000)], remembered);
    expect(given, "given a remembered endpoint").toEqual([key(1)]);
    expect(peers.map((p) => p.endpoint), "endpoints").toEqual(["198.51.100.7:40001", undefined, "203.0.113.3:51820", undefined]);
    expect(desired[0]!.endpoint, "the desired list is not changed").toBeUndefined();
  });
});
