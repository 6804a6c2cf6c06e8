/**
 * The path plan (pure): which pairs of nodes cannot reach each other directly by construction,
 * the relay session each such pair gets, and when its hole-punching rounds happen. The
 * coordinator (coordinator.ts) feeds it the nodes, what their heartbeats say and the state of
 * the last plan, and writes the per-node records it returns.
 *
 * - A pair needs traversal when both nodes lack a public endpoint and sit in different sites
 *   (same site: private addresses; one public: the NAT'd side reaches it and WireGuard learns
 *   the way back).
 * - Every such pair gets a relay session at once, so it has a working path within seconds; it
 *   stays as the fallback while the pair runs direct. A relay is a node labelled `weft:relay`
 *   with a public endpoint; a pair keeps its relay while that relay is usable; a new session goes
 *   to the online relay with the fewest sessions (then by name) and gets the lowest two free ports
 *   of the relay port range.
 * - A round starts when both sides are online and have reflexive endpoints, neither side's NAT maps
 *   per destination (then punching cannot work: the pair stays relayed until a mapping changes),
 *   and: the pair never had one, either side's candidates (reflexive endpoints, mapping) changed,
 *   or its backoff ran out while the pair is not direct (both sides' heartbeats say `direct` for
 *   each other; a pair that lost its direct path gets a round once `initialMs` has passed since
 *   the last). Backoff doubles from `initialMs` to `maxMs`.
 */
import type { NatMapping, NodePathsRecord, PeerPathPlan, RelaySession } from "@weft/protocol";

export interface PathNode {
  nodeId: string;
  name: string;
  site: string;
  /** The public endpoint's host, when the node has one. */
  publicHost: string | undefined;
  reflexive: readonly string[];
  mapping: NatMapping | undefined;
  /** Labelled `weft:relay` (or tagged). */
  relay: boolean;
  online: boolean;
}

export interface PairState {
  /** The two node ids, sorted. */
  nodes: [string, string];
  relay: { node: string; ports: [number, number] } | undefined;
  round: number;
  /** ms since epoch of the last round's start. */
  roundAt: number | undefined;
  /** Rounds started since the pair was last seen direct. */
  failures: number;
  nextRoundAt: number | undefined;
  /** The candidates the last round was started with. */
  candidates: string | undefined;
}

export interface PathConfig {
  relayPorts: { first: number; count: number };
  backoff: { initialMs: number; maxMs: number };
}

export interface PlanInput {
  nodes: readonly PathNode[];
  /** The last plan's pairs, by pairKey. */
  pairs: ReadonlyMap<string, PairState>;
  /** Whether both sides of the pair report a direct path to each other. */
  direct: (a: string, b: string) => boolean;
  now: number;
  config: PathConfig;
}

export type NodePaths = Omit<NodePathsRecord, "updatedAt">;

export interface PathPlan {
  pairs: Map<string, PairState>;
  /** One record per node that is in a pair or relays one; nodes absent here have nothing. */
  records: Map<string, NodePaths>;
  /** Pairs whose round started in this plan. */
  started: string[];
}

export function pairKey(a: string, b: string): string {
  return a < b ? `${a}-${b}` : `${b}-${a}`;
}

/** Whether two nodes can only meet through NAT traversal. */
export function needsTraversal(a: Pick<PathNode, "site" | "publicHost">, b: Pick<PathNode, "site" | "publicHost">): boolean {
  return a.publicHost === undefined && b.publicHost === undefined && a.site !== b.site;
}

export function planPaths(input: PlanInput): PathPlan {
  const byId = new Map(input.nodes.map((n) => [n.nodeId, n]));
  const relays = input.nodes.filter((n) => n.relay && n.publicHost !== undefined);
  const natted = input.nodes.filter((n) => n.publicHost === undefined).sort((a, b) => a.nodeId.localeCompare(b.nodeId));

  // Sessions per relay, and its ports in use, from the pairs that keep their relay.
  const load = new Map<string, number>();
  const used = new Map<string, Set<number>>();
  const pairs = new Map<string, PairState>();
  const wanted: [PathNode, PathNode][] = [];
  for (let i = 0; i < natted.length; i++) {
    for (let j = i + 1; j < natted.length; j++) {
      const a = natted[i]!;
      const b = natted[j]!;
      if (needsTraversal(a, b)) wanted.push([a, b]);
    }
  }
  // A pair keeps its relay while that relay exists, is labelled and has a public endpoint, and is
  // online (or no relay is).
  const anyOnline = relays.some((r) => r.online);
  const keptRelay = (prev: PairState | undefined) => {
    const r = prev?.relay && relays.find((x) => x.nodeId === prev.relay!.node);
    return r && (r.online || !anyOnline) ? prev!.relay : undefined;
  };
  for (const [a, b] of wanted) {
    const keep = keptRelay(input.pairs.get(pairKey(a.nodeId, b.nodeId)));
    if (keep) {
      load.set(keep.node, (load.get(keep.node) ?? 0) + 1);
      const ports = used.get(keep.node) ?? new Set<number>();
      used.set(keep.node, ports);
      keep.ports.forEach((p) => ports.add(p));
    }
  }

  const started: string[] = [];
  for (const [a, b] of wanted) {
    const key = pairKey(a.nodeId, b.nodeId);
    const prev = input.pairs.get(key);
    const state: PairState = prev
      ? { ...prev, nodes: [...prev.nodes] }
      : { nodes: [a.nodeId, b.nodeId], relay: undefined, round: 0, roundAt: undefined, failures: 0, nextRoundAt: undefined, candidates: undefined };

    // Relay: keep a usable one, else the least loaded online relay (any relay when none is online).
    if (!keptRelay(prev)) {
      state.relay = undefined;
      const pool = anyOnline ? relays.filter((r) => r.online) : relays;
      const choice = [...pool].sort((x, y) => (load.get(x.nodeId) ?? 0) - (load.get(y.nodeId) ?? 0) || x.name.localeCompare(y.name) || x.nodeId.localeCompare(y.nodeId))[0];
      const ports = choice ? freePorts(used.get(choice.nodeId) ?? new Set(), input.config.relayPorts) : undefined;
      if (choice && ports) {
        state.relay = { node: choice.nodeId, ports };
        load.set(choice.nodeId, (load.get(choice.nodeId) ?? 0) + 1);
        const set = used.get(choice.nodeId) ?? new Set<number>();
        ports.forEach((p) => set.add(p));
        used.set(choice.nodeId, set);
      }
    }

    // Rounds.
    const direct = input.direct(a.nodeId, b.nodeId);
    if (direct) {
      state.failures = 0;
      state.nextRoundAt = undefined;
    }
    const candidates = JSON.stringify([a.reflexive, a.mapping ?? null, b.reflexive, b.mapping ?? null]);
    const perDestination = a.mapping === "endpoint-dependent" || b.mapping === "endpoint-dependent";
    const punchable = a.online && b.online && a.reflexive.length > 0 && b.reflexive.length > 0 && !perDestination;
    const due =
      punchable &&
      (state.roundAt === undefined ||
        state.candidates !== candidates ||
        // Relayed: when the backoff runs out; after a direct path was lost, once initialMs has passed since the last round.
        (!direct && input.now >= (state.nextRoundAt ?? state.roundAt + input.config.backoff.initialMs)));
    if (due) {
      state.round += 1;
      state.roundAt = input.now;
      state.candidates = candidates;
      const wait = Math.min(input.config.backoff.maxMs, input.config.backoff.initialMs * 2 ** state.failures);
      state.failures += 1;
      state.nextRoundAt = input.now + wait;
      started.push(key);
    }
    pairs.set(key, state);
  }

  // Per-node records.
  const records = new Map<string, NodePaths>();
  const recordOf = (nodeId: string): NodePaths => {
    let r = records.get(nodeId);
    if (!r) records.set(nodeId, (r = { version: 1, nodeId, peers: [] }));
    return r;
  };
  for (const [key, p] of [...pairs].sort((x, y) => x[0].localeCompare(y[0]))) {
    const relay = p.relay ? byId.get(p.relay.node) : undefined;
    p.nodes.forEach((self, side) => {
      const other = p.nodes[1 - side]!;
      const plan: PeerPathPlan = { peer: other, ...(p.round > 0 ? { round: p.round } : {}) };
      if (p.relay && relay?.publicHost) plan.relay = { node: relay.nodeId, name: relay.name, endpoint: `${relay.publicHost}:${p.relay.ports[side]}` };
      recordOf(self).peers.push(plan);
    });
    if (p.relay && relay) {
      const session: RelaySession = { id: key, ports: p.relay.ports, nodes: p.nodes };
      const r = recordOf(relay.nodeId);
      (r.relaySessions ??= []).push(session);
    }
  }
  for (const r of records.values()) r.peers.sort((x, y) => x.peer.localeCompare(y.peer));
  return { pairs, records, started };
}

/** The lowest two free ports of the range, or undefined when it is full. */
function freePorts(used: ReadonlySet<number>, range: PathConfig["relayPorts"]): [number, number] | undefined {
  const got: number[] = [];
  for (let p = range.first; p < range.first + range.count && got.length < 2; p++) if (!used.has(p)) got.push(p);
  return got.length === 2 ? [got[0]!, got[1]!] : undefined;
}
