/**
 * PeerReconciler on a fake host: the cached peers come back before NATS (and are not recorded
 * again), a peer set from NATS converges WireGuard and is recorded in state.json and the status,
 * new tunnels are warmed up, a node behind NAT re-handshakes with a peer that has a new session
 * epoch, and a set without this node marks it removed.
 */
import { afterEach, describe, expect, it } from "vitest";
import { loadState } from "../state/store.js";
import { enrolledNode, peerRecord, peerSet, type Node } from "./testing.js";

const nodes: Node[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.cleanup();
});
async function node(...args: Parameters<typeof enrolledNode>): Promise<Node> {
  const n = await enrolledNode(...args);
  nodes.push(n);
  return n;
}

const wgPeers = (n: Node) => (n.host.peers ?? []).map((p) => ({ publicKey: p.publicKey, endpoint: p.endpoint, allowedIps: p.allowedIps, keepalive: p.persistentKeepalive })).sort((a, b) => a.publicKey.localeCompare(b.publicKey));
const wgSets = (n: Node) => n.runner.calls.map((c) => c.argv.join(" ")).filter((a) => a.startsWith("wg set weft0 peer"));

/** Runs `during` once, the first time the reconciler reads WireGuard (a re-add's look), before that read answers. */
function onFirstLook(n: Node, during: () => Promise<void> | void): { ran: () => boolean } {
  const peers = n.wireguard.peers.bind(n.wireguard);
  let ran = false;
  n.wireguard.peers = async () => {
    const got = await peers();
    if (!ran) {
      ran = true;
      await during();
    }
    return got;
  };
  return { ran: () => ran };
}

describe("reconcile/peers", () => {
  it("peers - a set from NATS converges WireGuard, warms the new tunnels and is recorded", async () => {
    const n = await node({ n: 1, site: "aws" });
    await n.iface.bringUp([]);
    const me = peerRecord(1, "aws", { endpoints: { private: "10.0.0.1:51820" } });
    const same = peerRecord(2, "aws", { endpoints: { private: "10.0.0.2:51820", public: "203.0.113.2:51820" } });
    const other = peerRecord(3, "gcp", { endpoints: { private: "10.9.0.3:51820", public: "198.51.100.3:51820" } });
    n.peers.submit(peerSet([me, same, other], 12));
    await n.peers.synced;

    const want = [
      { publicKey: same.wireguardPublicKey, endpoint: "10.0.0.2:51820", allowedIps: ["100.64.0.2/32"], keepalive: undefined },
      { publicKey: other.wireguardPublicKey, endpoint: "198.51.100.3:51820", allowedIps: ["100.64.0.3/32"], keepalive: undefined },
    ].sort((a, b) => a.publicKey.localeCompare(b.publicKey));
    expect(wgPeers(n), "WireGuard peers").toEqual(want);
    expect(n.warmed.flat().sort(), "warmed up").toEqual(["100.64.0.2", "100.64.0.3"]);
    const applied = (await loadState(n.dir))?.applied;
    expect({ revision: applied?.revision, peers: applied?.peers.map((p) => p.nodeId) }, "state.json applied").toEqual({ revision: 12, peers: [me.nodeId, same.nodeId, other.nodeId] });
    const { appliedRevision, peers, stale, removed } = n.status.current;
    expect({ appliedRevision, peers, stale, removed }, "status").toEqual({ appliedRevision: 12, peers: 3, stale: false, removed: false });

    // The same set again changes nothing and warms nothing.
    const before = wgSets(n).length;
    n.peers.submit(peerSet([me, same, other], 13));
    await n.peers.idle();
    expect(wgSets(n).length - before, "wg set calls for an unchanged set").toBe(0);
    expect(n.warmed.at(-1), "warmed on an unchanged set").toEqual([]);
  });

  it("peers - fail static: the cached set comes back before NATS and is not recorded again", async () => {
    const me = peerRecord(1, "aws");
    const cachedPeer = peerRecord(4, "gcp", { endpoints: { public: "198.51.100.4:51820" } });
    const n = await node({ n: 1, cached: { applied: { revision: 40, peers: [me, cachedPeer], appliedAt: "2030-01-01T00:00:00.000Z" } } });
    await n.iface.bringUp([]);
    const appliedAt = n.state.current.applied?.appliedAt;
    await n.peers.restore();
    expect(wgPeers(n).map((p) => p.publicKey), "WireGuard peers from the cache").toEqual([cachedPeer.wireguardPublicKey]);
    expect(n.state.current.applied?.appliedAt, "cache not rewritten").toBe(appliedAt);
    expect(n.status.current.stale, "still stale until NATS answers").toBe(true);
  });

  it("peers - a start from the cache adds a peer behind NAT with the endpoint it last reached this node from, unless WireGuard has one; observe keeps it", async () => {
    const me = peerRecord(1, "aws", { endpoints: { public: "203.0.113.1:51820" } });
    const nat = peerRecord(9, "home");
    const cached = { applied: { revision: 40, peers: [me, nat], appliedAt: "2030-01-01T00:00:00.000Z" }, rememberedEndpoints: { [nat.wireguardPublicKey]: "198.51.100.9:40001" } };
    // A new interface (a reboot): the peer comes back with the remembered endpoint and is warmed up (a handshake now).
    const fresh = await node({ n: 1, cached });
    await fresh.iface.bringUp([]);
    await fresh.peers.restore();
    expect(wgPeers(fresh), "the peer behind NAT, from the cache").toEqual([{ publicKey: nat.wireguardPublicKey, endpoint: "198.51.100.9:40001", allowedIps: ["100.64.0.9/32"], keepalive: undefined }]);
    expect(fresh.warmed.flat(), "warmed up").toEqual(["100.64.0.9"]);
    expect(fresh.lines.some((l) => l.msg === "peers behind NAT added with the endpoints they last reached this node from"), "logged").toBe(true);

    // The interface survived (the agent alone restarted): WireGuard's own endpoint is newer and kept.
    const kept = await node({ n: 1, cached });
    await kept.iface.bringUp([]);
    kept.host.peers = [{ publicKey: nat.wireguardPublicKey, endpoint: "198.51.100.9:45555", allowedIps: ["100.64.0.9/32"], latestHandshake: Math.floor(Date.now() / 1000) }];
    await kept.peers.restore();
    expect(wgPeers(kept).map((p) => p.endpoint), "endpoint after a restart with the interface kept").toEqual(["198.51.100.9:45555"]);
    expect(kept.warmed.flat(), "nothing to warm up").toEqual([]);

    // Observed while running: the NAT gave the peer another port; it is what the next start uses.
    kept.host.peers[0]!.endpoint = "198.51.100.9:47777";
    await kept.peers.observe(await kept.wireguard.peers());
    expect(kept.state.current.rememberedEndpoints, "remembered").toEqual({ [nat.wireguardPublicKey]: "198.51.100.9:47777" });
    expect((await loadState(kept.dir))?.rememberedEndpoints, "in state.json").toEqual({ [nat.wireguardPublicKey]: "198.51.100.9:47777" });
    // A peer set that gives the peer a public endpoint: nothing to remember for it any more.
    kept.peers.submit(peerSet([me, { ...nat, endpoints: { public: "198.51.100.9:51820" } }], 41));
    await kept.peers.idle();
    await kept.peers.observe(await kept.wireguard.peers());
    expect(kept.state.current.rememberedEndpoints, "forgotten").toEqual({});
  });

  it("peers - behind NAT, a peer with a new session epoch is removed and added again (handshakes now)", async () => {
    const me = peerRecord(1, "home");
    const gw = peerRecord(5, "aws", { endpoints: { public: "203.0.113.5:51820" }, sessionEpoch: "00000000000000aa" });
    const n = await node({ n: 1, site: "home", behindNat: true });
    await n.iface.bringUp([]);
    n.peers.submit(peerSet([me, gw], 1));
    await n.peers.idle();
    expect(wgPeers(n), "first apply").toEqual([{ publicKey: gw.wireguardPublicKey, endpoint: "203.0.113.5:51820", allowedIps: ["100.64.0.5/32"], keepalive: 25 }]);

    const before = wgSets(n).length;
    n.peers.submit(peerSet([me, { ...gw, sessionEpoch: "00000000000000bb" }], 2));
    await n.peers.idle();
    const want = [`wg set weft0 peer ${gw.wireguardPublicKey} remove`, `wg set weft0 peer ${gw.wireguardPublicKey} endpoint 203.0.113.5:51820 allowed-ips 100.64.0.5/32 persistent-keepalive 25`];
    expect(wgSets(n).slice(before), "wg set calls after the epoch changed").toEqual(want);
    expect(n.warmed.at(-1), "re-added tunnel warmed").toEqual(["100.64.0.5"]);
    expect(n.lines.some((l) => l.msg === "peers recreated their interfaces; re-handshaking"), "logged").toBe(true);
  });

  it("peers - behind NAT, peers still without a handshake are re-added and warmed again, a bounded number of times", async () => {
    const me = peerRecord(1, "home");
    const done = peerRecord(5, "aws", { endpoints: { public: "203.0.113.5:51820" } });
    const late = peerRecord(6, "gcp", { endpoints: { public: "198.51.100.6:51820" } });
    const n = await node({ n: 1, site: "home", behindNat: true, firstHandshakeRetryMs: [20, 20] });
    await n.iface.bringUp([]);
    n.peers.submit(peerSet([me, done, late], 1));
    await n.peers.idle();
    // aws answered the first initiation; gcp had not added this node yet.
    const answered = n.host.peers?.find((p) => p.publicKey === done.wireguardPublicKey);
    if (!answered) throw new Error("fake host: aws peer missing");
    answered.latestHandshake = Math.floor(Date.now() / 1000);
    const before = wgSets(n).length;
    await new Promise((r) => setTimeout(r, 200));
    await n.peers.idle();
    const readd = [`wg set weft0 peer ${late.wireguardPublicKey} remove`, `wg set weft0 peer ${late.wireguardPublicKey} endpoint 198.51.100.6:51820 allowed-ips 100.64.0.6/32 persistent-keepalive 25`];
    expect(wgSets(n).slice(before), "wg set calls: only the peer without a handshake, once per attempt").toEqual([...readd, ...readd]);
    expect(n.warmed.slice(1), "warmed again").toEqual([["100.64.0.6"], ["100.64.0.6"]]);
    expect(wgPeers(n).map((p) => p.publicKey).sort(), "both peers configured").toEqual([done.wireguardPublicKey, late.wireguardPublicKey].sort());
  });

  it("peers - a public node re-adds the peers it opens tunnels to that have no handshake yet (both first initiations lost), not the peers behind NAT", async () => {
    const me = peerRecord(1, "aws", { endpoints: { public: "203.0.113.1:51820" } });
    const done = peerRecord(5, "azure", { endpoints: { public: "203.0.113.5:51820" } });
    const late = peerRecord(6, "gcp", { endpoints: { public: "198.51.100.6:51820" } });
    const home = peerRecord(7, "home"); // behind NAT: it opens the tunnel to this node
    const n = await node({ n: 1, site: "aws", firstHandshakeRetryMs: [20, 20] });
    await n.iface.bringUp([]);
    n.peers.submit(peerSet([me, done, late, home], 1));
    await n.peers.idle();
    const answered = n.host.peers?.find((p) => p.publicKey === done.wireguardPublicKey);
    if (!answered) throw new Error("fake host: azure peer missing");
    answered.latestHandshake = Math.floor(Date.now() / 1000);
    const before = wgSets(n).length;
    await new Promise((r) => setTimeout(r, 200));
    await n.peers.idle();
    const readd = [`wg set weft0 peer ${late.wireguardPublicKey} remove`, `wg set weft0 peer ${late.wireguardPublicKey} endpoint 198.51.100.6:51820 allowed-ips 100.64.0.6/32`];
    expect(wgSets(n).slice(before), "wg set calls: only the public peer without a handshake, once per attempt").toEqual([...readd, ...readd]);
    expect(n.warmed.slice(1), "warmed again").toEqual([["100.64.0.6"], ["100.64.0.6"]]);
    expect(wgPeers(n).map((p) => p.publicKey).sort(), "every peer configured").toEqual([done.wireguardPublicKey, late.wireguardPublicKey, home.wireguardPublicKey].sort());
  });

  it("peers - a peer whose handshake completes between the look and its re-add is not re-added (its fresh session kept)", async () => {
    const me = peerRecord(1, "aws", { endpoints: { public: "203.0.113.1:51820" } });
    const late = peerRecord(6, "gcp", { endpoints: { public: "198.51.100.6:51820" } });
    const n = await node({ n: 1, site: "aws", firstHandshakeRetryMs: [20] });
    await n.iface.bringUp([]);
    // The look reads no handshake; the handshake completes right after it.
    const looked = onFirstLook(n, () => {
      const peer = n.host.peers?.find((p) => p.publicKey === late.wireguardPublicKey);
      if (peer) peer.latestHandshake = Math.floor(Date.now() / 1000);
    });
    n.peers.submit(peerSet([me, late], 1));
    await n.peers.idle();
    const before = wgSets(n).length;
    await new Promise((r) => setTimeout(r, 150));
    await n.peers.idle();
    expect(looked.ran(), "the look ran").toBe(true);
    expect(wgSets(n).slice(before), "no remove and add of the peer").toEqual([]);
    expect(wgPeers(n).map((p) => p.publicKey), "the peer configured").toEqual([late.wireguardPublicKey]);
  });

  it("peers - behind NAT, a re-add that reads WireGuard while a newer set arrives applies the newer set, never the older one over it", async () => {
    const me = peerRecord(1, "home");
    const late = peerRecord(6, "gcp", { endpoints: { public: "198.51.100.6:51820" } });
    const gateway = peerRecord(7, "onprem", { endpoints: { public: "198.51.100.7:51820" }, siteRoutes: ["192.168.50.0/24"] });
    const n = await node({ n: 1, site: "home", behindNat: true, firstHandshakeRetryMs: [20] });
    await n.iface.bringUp([]);
    // While the re-add reads WireGuard (`wg show`), the peers watch delivers revision 2 (a new gateway with its site's route).
    const delivered = onFirstLook(n, () => n.peers.submit(peerSet([me, late, gateway], 2)));
    n.peers.submit(peerSet([me, late], 1));
    await n.peers.idle();
    await new Promise((r) => setTimeout(r, 150)); // the re-add's pause, and what it queues
    await n.peers.idle();
    expect(delivered.ran(), "revision 2 arrived during the re-add").toBe(true);
    expect(n.state.current.applied?.revision, "recorded: the newest revision").toBe(2);
    expect(wgPeers(n).map((p) => p.publicKey).sort(), "WireGuard has revision 2's peers").toEqual([late.wireguardPublicKey, gateway.wireguardPublicKey].sort());
  });

  it("peers - settled, public or behind NAT: once the first set's handshakes are done or no longer retried", async () => {
    // "settled" if `p` resolves within `ms` (timers on a loaded machine run late: positives get a wide margin).
    const state = (p: Promise<void>, ms = 5) => Promise.race([p.then(() => "settled"), new Promise((r) => setTimeout(() => r("pending"), ms))]);
    const late = peerRecord(6, "gcp", { endpoints: { public: "198.51.100.6:51820" } });
    for (const where of ["public", "behind NAT"] as const) {
      const behindNat = where === "behind NAT";
      const me = behindNat ? peerRecord(1, "home") : peerRecord(1, "aws", { endpoints: { public: "203.0.113.1:51820" } });
      const site = behindNat ? "home" : "aws";
      const unanswered = await node({ n: 1, site, behindNat, firstHandshakeRetryMs: [30, 30] });
      await unanswered.iface.bringUp([]);
      expect(await state(unanswered.peers.settled), `${where}: before any set`).toBe("pending");
      unanswered.peers.submit(peerSet([me, late], 1));
      await unanswered.peers.idle();
      expect(await state(unanswered.peers.synced), `${where}: synced`).toBe("settled");
      expect(await state(unanswered.peers.settled), `${where}: not settled while the first handshake is retried`).toBe("pending");
      // Both retries (60 ms), and no handshake ever.
      expect(await state(unanswered.peers.settled, 2000), `${where}: settled once no longer retried`).toBe("settled");

      // Running out of retries would take 15 s here: settling within 2 s is the first look's doing.
      const answered = await node({ n: 1, site, behindNat, firstHandshakeRetryMs: [30, 5000, 5000, 5000] });
      await answered.iface.bringUp([]);
      answered.peers.submit(peerSet([me, late], 1));
      await answered.peers.idle();
      const peer = answered.host.peers?.find((p) => p.publicKey === late.wireguardPublicKey);
      if (!peer) throw new Error("fake host: gcp peer missing");
      peer.latestHandshake = Math.floor(Date.now() / 1000);
      expect(await state(answered.peers.settled, 2000), `${where}: settled as soon as a look finds every handshake`).toBe("settled");
    }
  });

  it("peers - behind NAT, a re-add still pending when a newer set arrives is not lost: the newer set is applied with it", async () => {
    const me = peerRecord(1, "home");
    const late = peerRecord(6, "gcp", { endpoints: { public: "198.51.100.6:51820" } });
    const other = peerRecord(7, "aws", { endpoints: { public: "203.0.113.7:51820" } });
    const n = await node({ n: 1, site: "home", behindNat: true, firstHandshakeRetryMs: [20] });
    await n.iface.bringUp([]);
    n.peers.submit(peerSet([me, late], 1));
    await n.peers.idle();
    // When the re-add looks at WireGuard, revision 2 arrives and its apply is slow: the re-add waits
    // behind it, and revision 3 arrives before it runs (an agent busy starting, as in the lab).
    let release: () => void = () => undefined;
    const slow = new Promise<void>((r) => (release = r));
    const sync = n.wireguard.syncPeers.bind(n.wireguard);
    let gated = false;
    n.wireguard.syncPeers = async (...args: Parameters<typeof sync>) => {
      if (gated) await slow;
      return sync(...args);
    };
    const delivered = onFirstLook(n, async () => {
      gated = true;
      n.peers.submit(peerSet([me, late], 2));
      await new Promise((r) => setTimeout(r, 5)); // revision 2 is being applied (held at syncPeers)
    });
    await new Promise((r) => setTimeout(r, 100)); // the pause; the re-add is queued behind revision 2
    const before = wgSets(n).length;
    n.peers.submit(peerSet([me, late, other], 3));
    gated = false;
    release();
    await n.peers.idle();
    expect(delivered.ran(), "revision 2 arrived during the re-add").toBe(true);
    const after = wgSets(n).slice(before);
    expect(after.some((c) => c.includes(`peer ${late.wireguardPublicKey} remove`)), `revision 3 applied with the re-add of the peer without a handshake: ${JSON.stringify(after)}`).toBe(true);
    expect(wgPeers(n).map((p) => p.publicKey).sort(), "WireGuard has revision 3's peers").toEqual([late.wireguardPublicKey, other.wireguardPublicKey].sort());
    expect(n.state.current.applied?.revision, "recorded: the newest revision").toBe(3);
  });

  it("peers - a public node does not re-handshake on a new epoch (the peer reaches it)", async () => {
    const me = peerRecord(1, "aws", { endpoints: { public: "203.0.113.1:51820" } });
    const p = peerRecord(6, "gcp", { endpoints: { public: "198.51.100.6:51820" }, sessionEpoch: "00000000000000aa" });
    const n = await node({ n: 1, site: "aws" });
    await n.iface.bringUp([]);
    n.peers.submit(peerSet([me, p], 1));
    await n.peers.idle();
    const before = wgSets(n).length;
    n.peers.submit(peerSet([me, { ...p, sessionEpoch: "00000000000000bb" }], 2));
    await n.peers.idle();
    expect(wgSets(n).slice(before), "wg set calls").toEqual([]);
  });

  it("peers - a set without this node marks it removed, logged once; peers still follow the set", async () => {
    const n = await node({ n: 1 });
    await n.iface.bringUp([]);
    const p = peerRecord(7, "gcp", { endpoints: { public: "198.51.100.7:51820" } });
    n.peers.submit(peerSet([p], 3));
    await n.peers.idle();
    n.peers.submit(peerSet([p], 4));
    await n.peers.idle();
    expect(n.status.current.removed, "status.removed").toBe(true);
    const errors = n.lines.filter((l) => l.level >= 50 && String(l.msg).startsWith("this node is no longer in the overlay"));
    expect(errors.length, "error lines").toBe(1);
    expect(wgPeers(n).map((x) => x.publicKey), "peers").toEqual([p.wireguardPublicKey]);
  });
});
