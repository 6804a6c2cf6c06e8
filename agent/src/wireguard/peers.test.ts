import { describe, expect, it } from "vitest";
import { InvalidDesiredStateError } from "./errors.js";
import { generateKeyPair } from "./keys.js";
import type { ActualPeer } from "./dump.js";
import { diffPeers, peerChangeArgs, type DesiredPeer, type PeerChange } from "./peers.js";

const [A, B, C] = [0, 1, 2].map(() => generateKeyPair().publicKey).sort() as [string, string, string];

const actual = (p: Partial<ActualPeer> & { publicKey: string }): ActualPeer => ({
  allowedIps: [],
  rxBytes: 0,
  txBytes: 0,
  ...p,
});

const show = (c: unknown): string => JSON.stringify(c);

describe("wireguard - diffPeers", () => {
  it("adds missing peers, removes unwanted ones, removes before adds", () => {
    const desired: DesiredPeer[] = [{ publicKey: B, endpoint: "192.0.2.2:51820", allowedIps: ["100.64.0.2/32"], persistentKeepalive: 25 }];
    const got = diffPeers(desired, [actual({ publicKey: A, allowedIps: ["100.64.0.1/32"] })]);
    const want: PeerChange[] = [
      { kind: "remove", publicKey: A },
      { kind: "add", peer: { publicKey: B, endpoint: "192.0.2.2:51820", allowedIps: ["100.64.0.2/32"], persistentKeepalive: 25 } },
    ];
    expect(got, `got ${show(got)}, want ${show(want)}`).toEqual(want);
  });

  it("reports nothing for identical state", () => {
    const desired: DesiredPeer[] = [
      { publicKey: A, endpoint: "192.0.2.1:51820", allowedIps: ["100.64.0.1/32", "10.1.0.0/16"], persistentKeepalive: 25 },
    ];
    const got = diffPeers(desired, [
      actual({
        publicKey: A,
        endpoint: "192.0.2.1:51820",
        allowedIps: ["10.1.0.0/16", "100.64.0.1/32"],
        persistentKeepalive: 25,
        latestHandshake: new Date(),
        rxBytes: 100,
      }),
    ]);
    expect(got, `got ${show(got)}, want []`).toEqual([]);
  });

  it("compares allowed IPs as canonical, order-insensitive sets", () => {
    const desired: DesiredPeer[] = [{ publicKey: A, allowedIps: ["10.0.0.1", "fd00:0::1", "10.2.3.4/16", "10.0.0.1/32"] }];
    const got = diffPeers(desired, [actual({ publicKey: A, allowedIps: ["fd00::1/128", "10.2.0.0/16", "10.0.0.1/32"] })]);
    expect(got, `got ${show(got)}, want []`).toEqual([]);
  });

  it("updates only the allowed IPs when only they differ, with the complete new set", () => {
    const desired: DesiredPeer[] = [{ publicKey: A, endpoint: "192.0.2.1:51820", allowedIps: ["10.0.0.2", "10.0.0.1"] }];
    const got = diffPeers(desired, [actual({ publicKey: A, endpoint: "192.0.2.1:51820", allowedIps: ["10.0.0.1/32"] })]);
    const want: PeerChange[] = [{ kind: "update", publicKey: A, allowedIps: ["10.0.0.1/32", "10.0.0.2/32"] }];
    expect(got, `got ${show(got)}, want ${show(want)}`).toEqual(want);
  });

  it("never clears a learned endpoint when the desired peer has none", () => {
    const desired: DesiredPeer[] = [{ publicKey: A, allowedIps: ["10.0.0.1/32"] }];
    const got = diffPeers(desired, [actual({ publicKey: A, endpoint: "198.51.100.7:40000", allowedIps: ["10.0.0.1/32"] })]);
    expect(got, `got ${show(got)}, want [] (roamed endpoint kept)`).toEqual([]);
  });

  it("sets the endpoint when the desired one differs or none is known", () => {
    const desired: DesiredPeer[] = [
      { publicKey: A, endpoint: "192.0.2.9:51820", allowedIps: [] },
      { publicKey: B, endpoint: "[FD00::0:7]:51820", allowedIps: [] },
      { publicKey: C, endpoint: "[fd00::7]:51820", allowedIps: [] },
    ];
    const got = diffPeers(desired, [
      actual({ publicKey: A, endpoint: "192.0.2.1:51820" }),
      actual({ publicKey: B }),
      actual({ publicKey: C, endpoint: "[fd00::7]:51820" }),
    ]);
    const want: PeerChange[] = [
      { kind: "update", publicKey: A, endpoint: "192.0.2.9:51820" },
      { kind: "update", publicKey: B, endpoint: "[fd00::7]:51820" },
    ];
    expect(got, `got ${show(got)}, want ${show(want)}`).toEqual(want);
  });

  it("treats keepalive 0, off and absent as equal, and turns it off with 0", () => {
    const same = diffPeers(
      [
        { publicKey: A, allowedIps: [], persistentKeepalive: 0 },
        { publicKey: B, allowedIps: [] },
      ],
      [actual({ publicKey: A }), actual({ publicKey: B })],
    );
    expect(same, `got ${show(same)}, want []`).toEqual([]);
    const got = diffPeers(
      [
        { publicKey: A, allowedIps: [] },
        { publicKey: B, allowedIps: [], persistentKeepalive: 15 },
      ],
      [actual({ publicKey: A, persistentKeepalive: 25 }), actual({ publicKey: B, persistentKeepalive: 25 })],
    );
    const want: PeerChange[] = [
      { kind: "update", publicKey: A, persistentKeepalive: 0 },
      { kind: "update", publicKey: B, persistentKeepalive: 15 },
    ];
    expect(got, `got ${show(got)}, want ${show(want)}`).toEqual(want);
  });

  it("rejects invalid desired state", () => {
    const cases: Array<[string, DesiredPeer[]]> = [
      ["bad key", [{ publicKey: "nope", allowedIps: [] }]],
      ["duplicate peer", [{ publicKey: A, allowedIps: [] }, { publicKey: A, allowedIps: [] }]],
      ["bad CIDR", [{ publicKey: A, allowedIps: ["10.0.0.300/32"] }]],
      ["hostname endpoint", [{ publicKey: A, endpoint: "vpn.example.com:51820", allowedIps: [] }]],
      ["endpoint without port", [{ publicKey: A, endpoint: "192.0.2.1", allowedIps: [] }]],
      ["bad keepalive", [{ publicKey: A, allowedIps: [], persistentKeepalive: 70000 }]],
      [
        "allowed IP owned twice",
        [
          { publicKey: A, allowedIps: ["10.0.0.1/32"] },
          { publicKey: B, allowedIps: ["10.0.0.1"] },
        ],
      ],
    ];
    for (const [what, desired] of cases) {
      expect(() => diffPeers(desired, []), `${what}: want InvalidDesiredStateError`).toThrow(InvalidDesiredStateError);
    }
  });
});

describe("wireguard - wg set arguments", () => {
  it("builds add, update and remove arguments", () => {
    const cases: Array<[PeerChange, string[]]> = [
      [{ kind: "remove", publicKey: A }, ["peer", A, "remove"]],
      [
        { kind: "add", peer: { publicKey: A, endpoint: "192.0.2.1:1", allowedIps: ["10.0.0.1/32", "10.1.0.0/16"], persistentKeepalive: 25 } },
        ["peer", A, "endpoint", "192.0.2.1:1", "allowed-ips", "10.0.0.1/32,10.1.0.0/16", "persistent-keepalive", "25"],
      ],
      [{ kind: "add", peer: { publicKey: A, allowedIps: [] } }, ["peer", A]],
      [{ kind: "update", publicKey: A, allowedIps: [] }, ["peer", A, "allowed-ips", ""]],
      [{ kind: "update", publicKey: A, persistentKeepalive: 0 }, ["peer", A, "persistent-keepalive", "off"]],
    ];
    for (const [change, want] of cases) {
      const got = peerChangeArgs(change);
      expect(got, `${change.kind}: got ${show(got)}, want ${show(want)}`).toEqual(want);
    }
  });
});
