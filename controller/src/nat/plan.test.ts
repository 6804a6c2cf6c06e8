/** The path plan: which pairs need traversal, their relay sessions and their punching rounds. */
import { describe, expect, it } from "vitest";
import { needsTraversal, pairKey, planPaths, type PairState, type PathConfig, type PathNode } from "./plan.js";

const config: PathConfig = { relayPorts: { first: 41000, count: 4 }, backoff: { initialMs: 10_000, maxMs: 120_000 } };
const id = (n: number) => `n-${n.toString(16).padStart(16, "0")}`;
function node(n: number, name: string, site: string, o: Partial<PathNode> = {}): PathNode {
  return { nodeId: id(n), name, site, publicHost: undefined, reflexive: [], mapping: undefined, relay: false, online: true, ...o };
}
const relayA = node(1, "aws-2", "aws", { publicHost: "198.18.1.12", relay: true });
const relayB = node(2, "gcp-2", "gcp", { publicHost: "198.18.3.12", relay: true });
const cloud = node(3, "aws-1", "aws", { publicHost: "198.18.1.11" });
const onprem = node(4, "onprem-1", "onprem", { reflexive: ["198.19.4.2:51820"], mapping: "endpoint-independent" });
const branch = node(5, "branch-1", "branch", { reflexive: ["198.19.5.2:51820"], mapping: "endpoint-independent" });
const cgnat = node(6, "cgnat-1", "cgnat", { reflexive: ["198.19.6.2:40000", "198.19.6.2:40001"], mapping: "endpoint-dependent" });
const never = () => false;

describe("nat/plan", () => {
  it("plan - only pairs of NAT'd nodes in different sites need traversal", () => {
    expect(needsTraversal(onprem, branch), "onprem-branch").toBe(true);
    expect(needsTraversal(onprem, cloud), "one side public").toBe(false);
    expect(needsTraversal(onprem, { ...branch, site: "onprem" }), "same site").toBe(false);
    const plan = planPaths({ nodes: [relayA, cloud, onprem, branch, cgnat], pairs: new Map(), direct: never, now: 0, config });
    expect([...plan.pairs.keys()].sort(), "pairs").toEqual([pairKey(onprem.nodeId, branch.nodeId), pairKey(onprem.nodeId, cgnat.nodeId), pairKey(branch.nodeId, cgnat.nodeId)].sort());
    expect(plan.records.has(cloud.nodeId), "a public node that relays nothing has no record").toBe(false);
  });

  it("plan - each pair gets a relay session at once: two ports, each side told its own", () => {
    const plan = planPaths({ nodes: [relayA, onprem, branch], pairs: new Map(), direct: never, now: 0, config });
    const key = pairKey(onprem.nodeId, branch.nodeId);
    expect(plan.pairs.get(key)?.relay, "relay").toEqual({ node: relayA.nodeId, ports: [41000, 41001] });
    const [first, second] = [onprem, branch].sort((a, b) => a.nodeId.localeCompare(b.nodeId));
    expect(plan.records.get(first!.nodeId)?.peers, "first side").toEqual([{ peer: second!.nodeId, round: 1, relay: { node: relayA.nodeId, name: "aws-2", endpoint: "198.18.1.12:41000" } }]);
    expect(plan.records.get(second!.nodeId)?.peers[0]?.relay?.endpoint, "second side").toBe("198.18.1.12:41001");
    expect(plan.records.get(relayA.nodeId)?.relaySessions, "relay node").toEqual([{ id: key, ports: [41000, 41001], nodes: [first!.nodeId, second!.nodeId] }]);
  });

  it("plan - sessions spread over relays, a kept relay keeps its ports, a full range gives no session", () => {
    const nodes = [relayA, relayB, onprem, branch, cgnat];
    const plan = planPaths({ nodes, pairs: new Map(), direct: never, now: 0, config });
    const relaysUsed = [...plan.pairs.values()].map((p) => p.relay?.node);
    expect(relaysUsed.filter((r) => r === relayA.nodeId).length + relaysUsed.filter((r) => r === relayB.nodeId).length, "three sessions on relays").toBe(3);
    expect(Math.abs(relaysUsed.filter((r) => r === relayA.nodeId).length - relaysUsed.filter((r) => r === relayB.nodeId).length), "spread").toBeLessThanOrEqual(1);
    const again = planPaths({ nodes, pairs: plan.pairs, direct: never, now: 1000, config });
    for (const [k, p] of plan.pairs) expect(again.pairs.get(k)?.relay, `pair ${k} keeps its relay`).toEqual(p.relay);
    // One relay with 4 ports holds two sessions; the third pair gets none.
    const one = planPaths({ nodes: [relayA, onprem, branch, cgnat], pairs: new Map(), direct: never, now: 0, config });
    expect([...one.pairs.values()].filter((p) => p.relay).length, "sessions on a 4-port range").toBe(2);
  });

  it("plan - an offline relay's pairs move to an online one; with no relay at all pairs have none", () => {
    const first = planPaths({ nodes: [relayA, relayB, onprem, branch], pairs: new Map(), direct: never, now: 0, config });
    const key = pairKey(onprem.nodeId, branch.nodeId);
    const was = first.pairs.get(key)!.relay!.node;
    const down = [relayA, relayB].map((r) => (r.nodeId === was ? { ...r, online: false } : r));
    const moved = planPaths({ nodes: [...down, onprem, branch], pairs: first.pairs, direct: never, now: 1, config });
    expect(moved.pairs.get(key)?.relay?.node, "moved off the offline relay").not.toBe(was);
    const none = planPaths({ nodes: [onprem, branch], pairs: new Map(), direct: never, now: 0, config });
    expect(none.pairs.get(key)?.relay, "no relay").toBeUndefined();
    expect(none.records.get(onprem.nodeId)?.peers[0]?.relay, "no relay in the record").toBeUndefined();
  });

  it("plan - rounds: first at once, then backoff while relayed, none while direct, at once when candidates change", () => {
    const key = pairKey(onprem.nodeId, branch.nodeId);
    const nodes = [relayA, onprem, branch];
    let plan = planPaths({ nodes, pairs: new Map(), direct: never, now: 0, config });
    expect(plan.pairs.get(key)?.round, "first round at once").toBe(1);
    expect(plan.started, "started").toEqual([key]);
    plan = planPaths({ nodes, pairs: plan.pairs, direct: never, now: 9_999, config });
    expect(plan.pairs.get(key)?.round, "within the backoff").toBe(1);
    plan = planPaths({ nodes, pairs: plan.pairs, direct: never, now: 10_000, config });
    expect(plan.pairs.get(key)?.round, "after 10 s").toBe(2);
    expect(plan.pairs.get(key)?.nextRoundAt, "then 20 s").toBe(30_000);
    plan = planPaths({ nodes, pairs: plan.pairs, direct: () => true, now: 40_000, config });
    expect(plan.pairs.get(key)?.round, "direct: no round").toBe(2);
    expect(plan.pairs.get(key)?.failures, "direct resets the backoff").toBe(0);
    plan = planPaths({ nodes, pairs: plan.pairs, direct: () => true, now: 500_000, config });
    expect(plan.pairs.get(key)?.round, "still direct much later: no round").toBe(2);
    plan = planPaths({ nodes, pairs: plan.pairs, direct: never, now: 500_001, config });
    expect(plan.pairs.get(key)?.round, "fell back to the relay: a round at once").toBe(3);
    plan = planPaths({ nodes, pairs: plan.pairs, direct: () => true, now: 500_100, config });
    plan = planPaths({ nodes, pairs: plan.pairs, direct: never, now: 500_200, config });
    expect(plan.pairs.get(key)?.round, "direct for a moment and lost again: not before initialMs since the last round").toBe(3);
    const moved = [relayA, { ...onprem, reflexive: ["198.19.4.2:61000"] }, branch];
    plan = planPaths({ nodes: moved, pairs: plan.pairs, direct: never, now: 500_002, config });
    expect(plan.pairs.get(key)?.round, "candidates changed: a round at once").toBe(4);
  });

  it("plan - no round without candidates, while a side is offline, or while a side's NAT maps per destination", () => {
    const key = pairKey(onprem.nodeId, branch.nodeId);
    const bare = planPaths({ nodes: [relayA, { ...onprem, reflexive: [] }, branch], pairs: new Map(), direct: never, now: 0, config });
    expect(bare.pairs.get(key)?.round, "no reflexive endpoint").toBe(0);
    expect(bare.records.get(onprem.nodeId)?.peers[0]?.round, "no round in the record").toBeUndefined();
    const off = planPaths({ nodes: [relayA, onprem, { ...branch, online: false }], pairs: new Map(), direct: never, now: 0, config });
    expect(off.pairs.get(key)?.round, "offline side").toBe(0);
    const k2 = pairKey(onprem.nodeId, cgnat.nodeId);
    const sym = planPaths({ nodes: [relayA, onprem, cgnat], pairs: new Map(), direct: never, now: 0, config });
    expect(sym.pairs.get(k2)?.round, "per-destination NAT: no round").toBe(0);
    expect(sym.pairs.get(k2)?.relay?.node, "but a relay").toBe(relayA.nodeId);
    const fixed = planPaths({ nodes: [relayA, onprem, { ...cgnat, reflexive: ["198.19.6.2:51820"], mapping: "endpoint-independent" }], pairs: sym.pairs, direct: never, now: 1, config });
    expect(fixed.pairs.get(k2)?.round, "the NAT keeps ports now: a round at once").toBe(1);
  });

  it("plan - a restarted controller's pairs (rebuilt from the records) keep rounds and ports", () => {
    const key = pairKey(onprem.nodeId, branch.nodeId);
    const prev = new Map<string, PairState>([
      [key, { nodes: [onprem.nodeId, branch.nodeId].sort() as [string, string], relay: { node: relayA.nodeId, ports: [41002, 41003] }, round: 7, roundAt: undefined, failures: 0, nextRoundAt: undefined, candidates: undefined }],
    ]);
    const plan = planPaths({ nodes: [relayA, onprem, branch], pairs: prev, direct: never, now: 0, config });
    expect(plan.pairs.get(key)?.relay?.ports, "ports").toEqual([41002, 41003]);
    expect(plan.pairs.get(key)?.round, "next round continues from 7").toBe(8);
  });

  it("plan - planning over the nodes without a public endpoint and the relays equals planning over the whole fleet (what the coordinator's tick reads)", () => {
    const publics = Array.from({ length: 20 }, (_, i) => node(100 + i, `pub-${i}`, ["aws", "gcp"][i % 2]!, { publicHost: `198.18.9.${i + 1}` }));
    const fleet = [relayA, relayB, cloud, onprem, branch, cgnat, ...publics, node(7, "offline-relay", "azure", { publicHost: "198.18.7.1", relay: true, online: false })];
    const traversal = fleet.filter((n) => n.publicHost === undefined || n.relay);
    let allPairs: ReadonlyMap<string, PairState> = new Map();
    let somePairs: ReadonlyMap<string, PairState> = new Map();
    for (let round = 0; round < 6; round++) {
      const direct = (a: string, b: string) => round >= 3 && (a + b).length % 2 === 0;
      const all = planPaths({ nodes: fleet, pairs: allPairs, direct, now: round * 20_000, config });
      const some = planPaths({ nodes: traversal, pairs: somePairs, direct, now: round * 20_000, config });
      expect([...some.records].sort(), `round ${round}: records`).toEqual([...all.records].sort());
      expect([...some.pairs].sort(), `round ${round}: pairs`).toEqual([...all.pairs].sort());
      allPairs = all.pairs;
      somePairs = some.pairs;
    }
  });
});
