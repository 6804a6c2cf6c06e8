/**
 * What the datapath maps should hold, computed from control-plane records. Pure: no I/O, so it is
 * unit-tested without root, and the same functions run on cached records at start (fail static)
 * and on live ones from NATS.
 *
 * - ipcache: every node address and workload address that carries an identity (a /32 each).
 *   Addresses without one are left out and the datapath sees them as `world`.
 * - tunnels: when this node and a peer are in the same site and both say `sameSiteTransport:
 *   vxlan`, the peer's workload prefix maps to the address of its private endpoint; the
 *   from-workload program encapsulates traffic for that prefix instead of routing it into
 *   WireGuard. Across sites nothing is ever listed, so that traffic always takes WireGuard.
 * - policy: the node's compiled entries as port prefixes of the LPM map, and its default-deny
 *   identities. The entries are resolved again per (src, dst, proto) into disjoint intervals with
 *   deny winning (resolvePortIntervals), so overlapping input, a version-1 record included, still
 *   gives one verdict per port; each interval becomes the prefixes that cover it exactly.
 */
import { fromCompactEntry, parseEndpoint, portRangePrefixes, resolvePortIntervals, type NodePolicyRecord, type PeerRecord, type PortInterval } from "@weft/protocol";

/** `a.b.c.d/len` → identity. */
export type DesiredIpcache = Map<string, number>;

export function desiredIpcache(peers: Iterable<PeerRecord>): DesiredIpcache {
  const out: DesiredIpcache = new Map();
  for (const p of peers) {
    if (p.identity) out.set(`${p.overlayAddress}/32`, p.identity.id);
    for (const w of p.workloads ?? []) out.set(`${w.address}/32`, w.identity.id);
  }
  return out;
}

export interface DesiredTunnels {
  /** Peer workload prefix → underlay address to send VXLAN to. */
  tunnels: Map<string, string>;
  /** Underlay addresses VXLAN is accepted from. */
  sources: Set<string>;
}

/** Same-site VXLAN tunnels for `selfId`, whose own record must be among `peers`. */
export function desiredTunnels(selfId: string, peers: Iterable<PeerRecord>): DesiredTunnels {
  const all = [...peers];
  const self = all.find((p) => p.nodeId === selfId);
  const out: DesiredTunnels = { tunnels: new Map(), sources: new Set() };
  if (!self || self.sameSiteTransport !== "vxlan") return out;
  for (const p of all) {
    if (p.nodeId === selfId || p.site !== self.site || p.sameSiteTransport !== "vxlan") continue;
    const underlay = p.endpoints.private === undefined ? undefined : parseEndpoint(p.endpoints.private)?.host;
    if (underlay === undefined) continue;
    out.sources.add(underlay);
    if (p.workloadPrefix !== undefined) out.tunnels.set(p.workloadPrefix, underlay);
  }
  return out;
}

/** Whether this node itself takes part in same-site VXLAN (so it needs the device). */
export function wantsVxlan(selfId: string, peers: Iterable<PeerRecord>): boolean {
  for (const p of peers) if (p.nodeId === selfId) return p.sameSiteTransport === "vxlan";
  return false;
}

/** One entry of the policy LPM map: the ports whose first `portBits` bits equal `port`'s. */
export interface PolicyPrefix {
  srcId: number;
  dstId: number;
  proto: number;
  port: number;
  portBits: number;
  verdict: "allow" | "deny";
}

export interface DesiredPolicy {
  entries: PolicyPrefix[];
  defaultDeny: number[];
}

export function desiredPolicy(record: NodePolicyRecord | null): DesiredPolicy {
  if (!record) return { entries: [], defaultDeny: [] };
  const groups = new Map<string, { srcId: number; dstId: number; proto: number; allow: PortInterval[]; deny: PortInterval[] }>();
  for (const e of record.entries.map(fromCompactEntry)) {
    // Any protocol has no ports: whatever a record says, it covers every one.
    const interval = e.proto === 0 ? { from: 0, to: 65535 } : { from: e.port, to: e.endPort };
    const key = `${e.srcId}/${e.dstId}/${e.proto}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { srcId: e.srcId, dstId: e.dstId, proto: e.proto, allow: [], deny: [] }));
    g[e.verdict].push(interval);
  }
  const entries: PolicyPrefix[] = [];
  for (const g of groups.values()) {
    for (const i of resolvePortIntervals(g.allow, g.deny)) {
      for (const p of portRangePrefixes(i.from, i.to)) entries.push({ srcId: g.srcId, dstId: g.dstId, proto: g.proto, port: p.port, portBits: p.bits, verdict: i.verdict });
    }
  }
  return { entries, defaultDeny: [...record.defaultDeny] };
}
