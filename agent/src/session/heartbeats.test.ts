/**
 * The heartbeat message: what WireGuard shows of each peer, the applied revision and the session
 * epoch; and which peers a beat holds when there are more than HEARTBEAT_PEERS_MAX.
 */
import { HEARTBEAT_PEERS_MAX, Heartbeat } from "@weft/protocol";
import { describe, expect, it } from "vitest";
import { PrivateKey } from "../wireguard/keys.js";
import type { ActualPeer } from "../wireguard/index.js";
import { heartbeat, peersToReport } from "./heartbeats.js";

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

  /** `n` peers as WireGuard shows them on a busy node: endpoint, handshake, bytes. */
  const fleet = (n: number): ActualPeer[] =>
    Array.from({ length: n }, (_, i) => ({
      publicKey: Buffer.alloc(32, 0).fill(i % 256, 0, 1).fill(Math.floor(i / 256) % 256, 1, 2).fill(7, 2).toString("base64"),
      endpoint: `198.51.${Math.floor(i / 250) % 256}.${i % 250}:51820`,
      allowedIps: [`100.64.${Math.floor(i / 250)}.${i % 250}/32`],
      latestHandshake: new Date("2030-01-01T00:00:00Z"),
      rxBytes: 123_456_789_012,
      txBytes: 98_765_432_109,
    }));

  it("heartbeat - a node with more peers than a beat holds reports the needed ones in every beat and each of the others in turns", () => {
    const peers = fleet(5_000);
    const needed = new Set(peers.filter((_, i) => i % 125 === 0).map((p) => p.publicKey)); // 40 behind NAT
    const seen = new Map<string, number>();
    let cursor = "";
    const beats = Math.ceil((peers.length - needed.size) / (HEARTBEAT_PEERS_MAX - needed.size));
    for (let beat = 0; beat < beats; beat++) {
      const got = peersToReport(peers, HEARTBEAT_PEERS_MAX, (k) => needed.has(k), cursor);
      cursor = got.cursor;
      expect(got.peers.length, `beat ${beat}: peers`).toBe(HEARTBEAT_PEERS_MAX);
      expect([...needed].every((k) => got.peers.some((p) => p.publicKey === k)), `beat ${beat}: every needed peer`).toBe(true);
      expect(new Set(got.peers.map((p) => p.publicKey)).size, `beat ${beat}: no peer twice`).toBe(HEARTBEAT_PEERS_MAX);
      for (const p of got.peers) seen.set(p.publicKey, (seen.get(p.publicKey) ?? 0) + 1);
    }
    expect(seen.size, `after ${beats} beats: every peer reported`).toBe(peers.length);
    const others = [...seen].filter(([k]) => !needed.has(k)).map(([, n]) => n);
    expect(Math.max(...others), "a peer that is not needed, reported once per round (the last beat wraps around)").toBeLessThanOrEqual(2);

    const message = heartbeat({ nodeId: "n-0000000000000001" }, 9, peersToReport(peers, HEARTBEAT_PEERS_MAX, (k) => needed.has(k), "").peers, new Date(), () => ({ path: "direct", rttMs: 12.34 }), peers.length);
    const bytes = JSON.stringify(message).length;
    expect(bytes, "one beat's size").toBeLessThan(128 * 1024);
    expect(message.peerCount, "says how many peers the node has").toBe(5_000);
    expect(Heartbeat.safeParse(message).error?.issues, "fits the protocol").toBeUndefined();
    const everyPeer = JSON.stringify(heartbeat({ nodeId: "n-0000000000000001" }, 9, peers, new Date(), () => ({ path: "direct", rttMs: 12.34 }))).length;
    expect(everyPeer, "every peer in one beat would exceed the agent's 512 KiB payload limit").toBeGreaterThan(512 * 1024);
  });

  it("heartbeat - turns go on by key when peers come and go; more needed peers than room take turns too; a small node reports every peer", () => {
    const peers = fleet(1_200);
    const first = peersToReport(peers, 500, () => false, "");
    const joined = [...fleet(1_300).slice(1_200), ...peers.filter((p) => p.publicKey !== first.peers[10]!.publicKey)];
    const next = peersToReport(joined, 500, () => false, first.cursor);
    expect(next.peers.some((p) => first.peers.some((q) => q.publicKey === p.publicKey)), "no peer of the first beat again in the second").toBe(false);
    const allNeeded = peersToReport(peers, 500, () => true, "");
    const again = peersToReport(peers, 500, () => true, allNeeded.cursor);
    expect([allNeeded.peers.length, again.peers.length], "needed peers beyond the room: in turns").toEqual([500, 500]);
    expect(again.peers.some((p) => allNeeded.peers.some((q) => q.publicKey === p.publicKey)), "the second beat goes on where the first stopped").toBe(false);
    const small = fleet(7);
    expect(peersToReport(small, 500, () => false, "x").peers, "a node with few peers: all of them, as WireGuard lists them").toEqual(small);
    expect("peerCount" in heartbeat({ nodeId: "n-0000000000000001" }, 0, small, new Date()), "no count when every peer is there").toBe(false);
  });
});
