/** Path decisions for peers behind NAT. */
import type { PeerRecord } from "@weft/protocol";
import { describe, expect, it } from "vitest";
import { candidatesOf, isTraversalPeer, newRound, reportedPath, traversalEndpoint } from "./paths.js";

const plan = { peer: "n-0000000000000002", relay: { node: "n-0000000000000009", name: "aws-2", endpoint: "198.18.1.12:41000" }, round: 3 };
const peer = (endpoints: PeerRecord["endpoints"], site = "branch") => ({ site, endpoints });

describe("nat/paths", () => {
  it("paths - only a NAT'd peer in another site, seen from a NAT'd node, needs traversal", () => {
    expect(isTraversalPeer({ site: "onprem", behindNat: true }, peer({})), "both NAT'd").toBe(true);
    expect(isTraversalPeer({ site: "onprem", behindNat: false }, peer({})), "this node public").toBe(false);
    expect(isTraversalPeer({ site: "onprem", behindNat: true }, peer({ public: "1.2.3.4:5" })), "peer public").toBe(false);
    expect(isTraversalPeer({ site: "branch", behindNat: true }, peer({})), "same site").toBe(false);
  });

  it("paths - candidates: the reflexive endpoints; none when a NAT maps per destination; wait until the record names some", () => {
    expect(candidatesOf(peer({ reflexive: ["198.19.5.2:51820", "garbage"] }), peer({})), "usable ones").toEqual(["198.19.5.2:51820"]);
    expect(candidatesOf(peer({ reflexive: ["198.19.6.2:1"], mapping: "endpoint-dependent" }), peer({})), "peer per destination").toBe("none");
    expect(candidatesOf(peer({ reflexive: ["198.19.5.2:51820"] }), peer({ mapping: "endpoint-dependent" })), "self per destination").toBe("none");
    expect(candidatesOf(peer({}), peer({})), "no reflexive yet").toBe("wait");
  });

  it("paths - the endpoint: relay, nothing while probing (the probe owns it), the proven direct one", () => {
    expect(traversalEndpoint({ mode: "relay", round: 0, missed: 0 }, plan), "relay").toBe("198.18.1.12:41000");
    expect(traversalEndpoint({ mode: "relay", round: 0, missed: 0 }, undefined), "no relay").toBeUndefined();
    expect(traversalEndpoint({ mode: "probing", candidate: "198.19.5.2:51820", round: 1, missed: 0 }, plan), "probing").toBeUndefined();
    expect(traversalEndpoint({ mode: "direct", direct: "198.19.5.2:51820", round: 1, missed: 0 }, plan), "direct").toBe("198.19.5.2:51820");
  });

  it("paths - the reported path is read off WireGuard: relay at the relay's address, none without a live session", () => {
    const now = 1_000_000_000_000;
    const fresh = new Date(now - 10_000);
    expect(reportedPath({ endpoint: "198.18.1.12:41000", latestHandshake: fresh }, plan, now), "relay").toEqual({ path: "relay", via: "n-0000000000000009" });
    expect(reportedPath({ endpoint: "198.19.5.2:51820", latestHandshake: fresh }, plan, now), "direct").toEqual({ path: "direct" });
    expect(reportedPath({ endpoint: "198.19.5.2:51820", latestHandshake: new Date(now - 180_000) }, plan, now), "stale session").toEqual({ path: "none" });
    expect(reportedPath({ latestHandshake: fresh }, plan, now), "no endpoint").toEqual({ path: "none" });
    expect(reportedPath(undefined, plan, now), "no peer").toEqual({ path: "none" });
  });

  it("paths - a round is acted on once", () => {
    expect(newRound({ round: 2 }, plan), "newer").toBe(3);
    expect(newRound({ round: 3 }, plan), "same").toBeUndefined();
    expect(newRound({ round: 0 }, { peer: "n-0000000000000002" }), "no round").toBeUndefined();
  });
});
