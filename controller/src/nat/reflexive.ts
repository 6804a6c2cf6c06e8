/**
 * Reflexive endpoints (pure): the address:port at which the internet sees a node behind NAT,
 * learned the way a Nebula lighthouse learns it, from the source of its WireGuard packets. Every
 * node with a public endpoint reports in its heartbeats the endpoint each peer's packets come
 * from; for a node without one, the endpoints that public peers in other sites saw within the
 * last 180 s (a live session) are its reflexive endpoints, most-seen first.
 *
 * The NAT's mapping follows from comparing them: when two or more public peers all see the same
 * address:port, the NAT keeps one mapping for every destination (endpoint-independent: a peer
 * that learns it can punch a hole to it); when they see different ports, the NAT picks a port per
 * destination (endpoint-dependent: what one peer saw is of no use to another). With one observer
 * the mapping is not claimed.
 *
 * An observer could report anything; the worst it can do is send other nodes' probes to a wrong
 * address (WireGuard authenticates every packet), and the majority ordering keeps one liar from
 * coming first.
 */
import { parseEndpoint, type Heartbeat, type NatMapping, type NodeEndpoints } from "@weft/protocol";

/** A session older than this (WireGuard's reject-after time) says nothing about the NAT now. */
export const OBSERVATION_MAX_AGE_SECONDS = 180;
/** At most this many reflexive endpoints are kept per node. */
export const MAX_REFLEXIVE = 4;

export interface ObservedNode {
  nodeId: string;
  site: string;
  wireguardPublicKey: string;
  endpoints: NodeEndpoints;
}

export interface ReflexiveView {
  reflexive: string[];
  mapping: NatMapping | undefined;
}

/**
 * Each node's reflexive endpoints and mapping from the latest heartbeat of every node. Nodes with
 * a public endpoint get nothing (they need none); a node no public peer has seen gets an empty list.
 */
export function reflexiveEndpoints(nodes: readonly ObservedNode[], heartbeats: Pick<ReadonlyMap<string, Heartbeat>, "get">, nowSeconds: number): Map<string, ReflexiveView> {
  const observers = nodes.filter((n) => n.endpoints.public !== undefined);
  const out = new Map<string, ReflexiveView>();
  for (const n of nodes) {
    if (n.endpoints.public !== undefined) continue;
    const seen: string[] = [];
    for (const o of observers) {
      if (o.site === n.site || o.nodeId === n.nodeId) continue;
      const peer = heartbeats.get(o.nodeId)?.peers.find((p) => p.publicKey === n.wireguardPublicKey);
      if (!peer?.endpoint || peer.lastHandshake === undefined || nowSeconds - peer.lastHandshake > OBSERVATION_MAX_AGE_SECONDS) continue;
      if (!parseEndpoint(peer.endpoint)) continue; // IPv6 or garbage: not used for punching
      seen.push(peer.endpoint);
    }
    const counts = new Map<string, number>();
    for (const e of seen) counts.set(e, (counts.get(e) ?? 0) + 1);
    const reflexive = [...counts.entries()]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(([e]) => e)
      .slice(0, MAX_REFLEXIVE);
    out.set(n.nodeId, { reflexive, mapping: mappingOf(seen) });
  }
  return out;
}

/** The mapping the observations show: undefined with fewer than two. */
export function mappingOf(seen: readonly string[]): NatMapping | undefined {
  if (seen.length < 2) return undefined;
  return new Set(seen).size === 1 ? "endpoint-independent" : "endpoint-dependent";
}

/**
 * `endpoints` with the reflexive view in place, or undefined when the record should stay as it is:
 *   - no observation at all (a controller that just started, public peers gone quiet) keeps what
 *     was learned: a stale endpoint costs a failed probe, a missing one costs the direct path;
 *   - one observation says nothing about the mapping, so a known mapping is kept;
 *   - a NAT that maps per destination shows new ports with every new flow, none of them useful
 *     to anyone: while it stays so and at the same addresses, the record is not rewritten.
 */
export function withReflexive(endpoints: NodeEndpoints, view: ReflexiveView): NodeEndpoints | undefined {
  if (view.reflexive.length === 0) return undefined;
  const mapping = view.mapping ?? endpoints.mapping;
  const hosts = (list: readonly string[] | undefined) => JSON.stringify([...new Set((list ?? []).map((e) => e.replace(/:\d+$/, "")))].sort());
  if (mapping === "endpoint-dependent" && endpoints.mapping === mapping && hosts(endpoints.reflexive) === hosts(view.reflexive)) return undefined;
  if (JSON.stringify(endpoints.reflexive ?? []) === JSON.stringify(view.reflexive) && endpoints.mapping === mapping) return undefined;
  const { reflexive: _r, mapping: _m, ...rest } = endpoints;
  return { ...rest, reflexive: view.reflexive, ...(mapping ? { mapping } : {}) };
}
