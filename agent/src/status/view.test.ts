/**
 * status/view: what `weft status` shows — the applied peers (this node left out) with WireGuard's
 * live endpoint, handshake and bytes, the sync state from the status; and the shape check the
 * command applies to the agent's answer before printing it.
 */
import { describe, expect, it } from "vitest";
import { peerRecord } from "../reconcile/testing.js";
import type { AgentState } from "../state/store.js";
import { isStatusView, statusView } from "./view.js";

/** An enrolled node's state.json content (node 1 in `site`). */
function enrolledState(n: number, site: string): AgentState {
  return {
    version: 1,
    nodeId: `n-${n.toString(16).padStart(16, "0")}`,
    name: `${site}-${n}`,
    site,
    overlayAddress: `100.64.0.${n}`,
    overlayCidr: "100.64.0.0/16",
    controllerUrl: "https://198.19.0.2:8080",
    nats: { servers: ["nats://198.19.0.2:4222"], userJwt: "eyJ0eXAiOiJKV1QifQ.e30.x" },
    heartbeatSeconds: 10,
    enrolledAt: "2030-01-01T00:00:00.000Z",
  };
}

describe("status/view", () => {
  it("status view - applied peers without this node, each with WireGuard's live view when it has one", () => {
    const me = peerRecord(1, "aws");
    const live = peerRecord(2, "gcp", { endpoints: { public: "198.51.100.2:51820" } });
    const quiet = peerRecord(3, "azure");
    const state = { ...enrolledState(1, "aws"), applied: { revision: 9, peers: [me, live, quiet], appliedAt: "2030-01-01T00:00:00.000Z" } };
    const at = new Date("2030-01-01T00:00:05.000Z");
    const view = statusView(state, { nats: "connected", stale: false, lastSyncAt: "2030-01-01T00:00:01.000Z", interface: "weft0" }, [
      { publicKey: live.wireguardPublicKey, endpoint: "198.51.100.2:51820", allowedIps: [], latestHandshake: at, rxBytes: 10, txBytes: 20 },
    ]);
    expect({ nats: view.nats, stale: view.stale, removed: view.removed, revision: view.appliedRevision, iface: view.interface }, "sync state").toEqual({ nats: "connected", stale: false, removed: false, revision: 9, iface: "weft0" });
    expect(view.peers.map((p) => p.name), "peers (this node left out)").toEqual([live.name, quiet.name]);
    expect(view.peers[0], "live peer").toMatchObject({ endpoint: "198.51.100.2:51820", latestHandshake: Math.floor(at.getTime() / 1000), rxBytes: 10, txBytes: 20 });
    expect(view.peers[1], "peer WireGuard does not show").toMatchObject({ endpoint: undefined, latestHandshake: undefined, rxBytes: undefined });
  });

  it("status view - each peer carries the path the path manager reports (relay via, RTT), none when it reports nothing", () => {
    const me = peerRecord(1, "onprem");
    const relayed = peerRecord(2, "branch");
    const other = peerRecord(3, "aws", { endpoints: { public: "198.51.100.3:51820" } });
    const state = { ...enrolledState(1, "onprem"), applied: { revision: 4, peers: [me, relayed, other], appliedAt: "2030-01-01T00:00:00.000Z" } };
    const paths = [{ peer: relayed.name, nodeId: relayed.nodeId, path: "relay" as const, via: "relay-1", rttMs: 2.5 }];
    const view = statusView(state, { nats: "connected", stale: false, lastSyncAt: undefined, interface: "weft0", paths }, []);
    expect(view.peers[0], "relayed peer").toMatchObject({ name: relayed.name, path: "relay", via: "relay-1", rttMs: 2.5 });
    expect(view.peers[1], "peer without a reported path").toMatchObject({ name: other.name, path: undefined, via: undefined, rttMs: undefined });
  });

  it("status view - without a status file: nats unknown, stale", () => {
    const view = statusView(enrolledState(1, "aws"), undefined, []);
    expect({ nats: view.nats, stale: view.stale, peers: view.peers.length }, "view").toEqual({ nats: "unknown", stale: true, peers: 0 });
  });

  it("status view - the shape check accepts a view and refuses anything else", () => {
    const view = statusView(enrolledState(1, "aws"), undefined, []);
    expect(isStatusView(JSON.parse(JSON.stringify(view))), "a view through JSON").toBe(true);
    for (const bad of [null, "x", {}, { ...view, peers: "no" }, { ...view, peers: [{ name: 1 }] }, { ...view, stale: "false" }]) {
      expect(isStatusView(bad), `isStatusView(${JSON.stringify(bad)})`).toBe(false);
    }
  });
});
