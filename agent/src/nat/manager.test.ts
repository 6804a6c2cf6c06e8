/**
 * The path manager on a fake WireGuard that roams like the real one (a packet from an address
 * makes it the peer's endpoint) and a fake probe: relay first, a probe proven only by an answer
 * that left WireGuard pointing at the candidate, the fallback when a direct path goes quiet.
 */
import type { NodePathsRecord, PeerRecord } from "@weft/protocol";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { ActualPeer } from "../wireguard/index.js";
import { PathManager, SESSIONLESS_EVERY } from "./manager.js";

const key = (c: string) => `${c.repeat(43)}=`;
const SELF = "n-0000000000000001";
const PEER = "n-0000000000000002";
const RELAY_EP = "198.18.1.12:41000";
const DIRECT = "198.19.5.2:51820";

function record(nodeId: string, name: string, site: string, k: string, endpoints: PeerRecord["endpoints"]): PeerRecord {
  return { version: 1, nodeId, name, site, wireguardPublicKey: key(k), overlayAddress: `100.64.0.${k === "A" ? 1 : 2}`, allowedIps: [`100.64.0.${k === "A" ? 1 : 2}/32`], endpoints, updatedAt: "" };
}
const self = record(SELF, "onprem-1", "onprem", "A", { private: "192.168.50.11:51820", reflexive: ["198.19.4.2:51820"], mapping: "endpoint-independent" });
const peer = record(PEER, "branch-1", "branch", "B", { private: "192.168.60.11:51820", reflexive: [DIRECT], mapping: "endpoint-independent" });
const plan = (round?: number): NodePathsRecord => ({ version: 1, nodeId: SELF, peers: [{ peer: PEER, relay: { node: "n-0000000000000009", name: "aws-2", endpoint: RELAY_EP }, ...(round ? { round } : {}) }], updatedAt: "" });

const managers: PathManager[] = [];
afterEach(() => {
  for (const m of managers.splice(0)) m.stop();
});

/** How the peer answers a ping: through which address its packets arrive (undefined: no answer). */
type Answer = (endpointNow: string | undefined) => string | undefined;

function harness(answer: Answer, probeTiming = { intervalMs: 20, windowMs: 200 }) {
  const endpoints = new Map<string, string>();
  const applied: (string | undefined)[] = [];
  const wireguard = {
    peers: async (): Promise<ActualPeer[]> => [{ publicKey: key("B"), allowedIps: [], rxBytes: 0, txBytes: 0, latestHandshake: new Date(), ...(endpoints.has(key("B")) ? { endpoint: endpoints.get(key("B"))! } : {}) }],
    setEndpoint: async (k: string, e: string) => void endpoints.set(k, e),
  };
  const probe = {
    ping: async (_address: string, timeoutMs: number) => {
      const from = answer(endpoints.get(key("B")));
      if (from === undefined) return new Promise<undefined>((r) => setTimeout(() => r(undefined), timeoutMs)); // waits out its timeout, as a real ping does
      endpoints.set(key("B"), from); // WireGuard roams to where the answer came from
      return 5;
    },
  };
  // The peer reconciler: sets the chosen endpoint, leaves WireGuard's alone when there is none.
  // The reconciler's part, run only once the manager exists.
  const reapply = () => {
    const e = manager.endpoints().get(PEER);
    applied.push(e);
    if (e !== undefined) endpoints.set(key("B"), e);
  };
  const manager: PathManager = new PathManager({ self: { nodeId: SELF, site: "onprem", behindNat: true, keepaliveSeconds: 25 }, wireguard, probe, reapply, onChange: () => undefined, log: pino({ level: "silent" }), monitorMs: 20, rttMs: 60_000, probeTiming });
  managers.push(manager);
  return { manager, endpoints, applied };
}

const until = async (check: () => boolean, ms = 2000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe("nat/manager", () => {
  it("manager - a traversal peer starts on its relay; a round whose answer comes from the candidate makes it direct", async () => {
    const h = harness((now) => now); // the peer answers to whatever we send to: the direct path works
    h.manager.setPeers([self, peer]);
    h.manager.setPlan(plan());
    expect(h.manager.endpoints().get(PEER), "relay first").toBe(RELAY_EP);
    h.manager.setPlan(plan(1));
    h.manager.start();
    await until(() => h.manager.endpoints().get(PEER) === DIRECT);
    await until(() => h.manager.status()[0]?.path === "direct");
    expect(h.applied, "the probe asked the reconciler to leave the endpoint alone, then to keep the direct one").toContain(undefined);
  });

  it("manager - an answer that came through the relay (WireGuard roamed back to it) is not a direct path", async () => {
    const h = harness(() => RELAY_EP); // the peer has not switched: every answer arrives via the relay
    h.manager.setPeers([self, peer]);
    h.manager.setPlan(plan(1));
    await until(() => h.applied.length >= 2);
    expect(h.manager.endpoints().get(PEER), "back on the relay").toBe(RELAY_EP);
    expect(h.endpoints.get(key("B")), "WireGuard sends to the relay").toBe(RELAY_EP);
  });

  it("manager - no answer at all: back to the relay; a NAT that maps per destination is never probed", async () => {
    const h = harness(() => undefined);
    h.manager.setPeers([self, peer]);
    h.manager.setPlan(plan(1));
    await until(() => h.applied.length >= 2);
    expect(h.manager.endpoints().get(PEER), "relay").toBe(RELAY_EP);

    let probed = 0;
    const g = harness(() => {
      probed++;
      return undefined;
    });
    g.manager.setPeers([self, { ...peer, endpoints: { reflexive: ["198.19.6.2:1234"], mapping: "endpoint-dependent" } }]);
    g.manager.setPlan(plan(1));
    await new Promise((r) => setTimeout(r, 100));
    expect(probed, "pings of a probe").toBe(0);
    expect(g.manager.endpoints().get(PEER), "relay").toBe(RELAY_EP);
  });

  it("manager - while a probe points WireGuard at a candidate, the path is reported as none (not the relay, which gets nothing meanwhile)", async () => {
    const h = harness(() => undefined, { intervalMs: 20, windowMs: 1500 }); // the candidate never answers
    h.manager.setPeers([self, peer]);
    h.manager.setPlan(plan(1));
    h.manager.start();
    await until(() => h.endpoints.get(key("B")) === DIRECT); // the probe re-pointed WireGuard
    await new Promise((r) => setTimeout(r, 60)); // the monitor has read WireGuard since
    expect(h.manager.status()[0]?.path, "status.json while probing").toBe("none");
    expect(h.manager.report(key("B")).path, "heartbeat while probing").toBe("none");
    await until(() => h.manager.status()[0]?.path === "relay", 5000); // the probe failed: really back on the relay
    expect(h.endpoints.get(key("B")), "and WireGuard sends there").toBe(RELAY_EP);
  });

  it("manager - a probe stops as soon as the peer's record says its NAT maps per destination", async () => {
    let pings = 0;
    const h = harness(() => {
      pings++;
      return undefined;
    }, { intervalMs: 20, windowMs: 3000 });
    // A round planned on a mapping one observer saw (none known yet): the probe starts.
    h.manager.setPeers([self, { ...peer, endpoints: { reflexive: ["198.19.6.2:26934"] } }]);
    h.manager.setPlan(plan(1));
    await until(() => pings > 0);
    const started = Date.now();
    // The second observation: another port for another destination.
    h.manager.setPeers([self, { ...peer, endpoints: { reflexive: ["198.19.6.2:26934", "198.19.6.2:3719"], mapping: "endpoint-dependent" } }]);
    await until(() => h.manager.endpoints().get(PEER) === RELAY_EP, 1000);
    expect(Date.now() - started, "back on the relay long before the 3 s window ends").toBeLessThan(1000);
    expect(h.endpoints.get(key("B")), "WireGuard sends to the relay").toBe(RELAY_EP);
    const after = pings;
    await new Promise((r) => setTimeout(r, 200));
    expect(pings, "no more probe pings").toBe(after);
  });

  it("manager - a round that arrives before the peer's record names candidates waits for the record", async () => {
    let probed = 0;
    const h = harness((now) => {
      probed++;
      return now;
    });
    h.manager.setPeers([self, { ...peer, endpoints: { private: "192.168.60.11:51820" } }]);
    h.manager.setPlan(plan(1));
    await new Promise((r) => setTimeout(r, 50));
    expect(probed, "nothing to probe yet").toBe(0);
    h.manager.setPeers([self, peer]);
    await until(() => h.manager.endpoints().get(PEER) === DIRECT);
  });

  it("manager - RTT rounds ping a peer with a session every round, one without every SESSIONLESS_EVERY-th round only", async () => {
    const live = record("n-0000000000000003", "aws-1", "aws", "C", { public: "198.51.100.3:51820" });
    const dead = record("n-0000000000000004", "gcp-1", "gcp", "D", { public: "198.51.100.4:51820" });
    const pings = new Map<string, number>();
    const wireguard = {
      // A handshake a minute ago with the live peer; none ever with the dead one.
      peers: async (): Promise<ActualPeer[]> => [
        { publicKey: live.wireguardPublicKey, allowedIps: [], rxBytes: 0, txBytes: 0, latestHandshake: new Date(Date.now() - 60_000) },
        { publicKey: dead.wireguardPublicKey, allowedIps: [], rxBytes: 0, txBytes: 0 },
      ],
      setEndpoint: async () => undefined,
    };
    const probe = {
      ping: async (address: string) => {
        pings.set(address, (pings.get(address) ?? 0) + 1);
        return address === live.overlayAddress ? 2 : undefined;
      },
    };
    const manager = new PathManager({ self: { nodeId: SELF, site: "onprem", behindNat: false, keepaliveSeconds: 25 }, wireguard, probe, reapply: () => undefined, onChange: () => undefined, log: pino({ level: "silent" }), monitorMs: 5, rttMs: 25 });
    managers.push(manager);
    live.overlayAddress = "100.64.0.3";
    dead.overlayAddress = "100.64.0.4";
    manager.setPeers([self, live, dead]);
    manager.start();
    await until(() => (pings.get(live.overlayAddress) ?? 0) >= 2 * SESSIONLESS_EVERY + 1, 5000);
    manager.stop();
    const done = pings.get(live.overlayAddress) ?? 0; // rounds run (a loaded machine may have run more than asked)
    const want = Math.floor((done - 1) / SESSIONLESS_EVERY) + 1;
    expect(pings.get(dead.overlayAddress), `pings to the sessionless peer in ${done} rounds (the first and every ${SESSIONLESS_EVERY}th)`).toBe(want);
    const rtt = Object.fromEntries(manager.status().map((p) => [p.peer, p.rttMs]));
    expect(rtt, "round trips reported").toEqual({ "aws-1": 2, "gcp-1": undefined });
  });

  it("manager - reportFirst: a peer behind NAT is what a full heartbeat keeps; a public peer is not, session or none", () => {
    const h = harness((now) => now);
    const pub = record("n-0000000000000003", "aws-1", "aws", "C", { public: "203.0.113.3:51820" });
    h.manager.setPeers([self, peer, pub]);
    expect(h.manager.reportFirst(key("B")), "behind NAT").toBe(true);
    expect(h.manager.reportFirst(key("C")), "public, no session yet").toBe(false);
    expect(h.manager.reportFirst(key("D")), "not a peer").toBe(false);
  });
});
