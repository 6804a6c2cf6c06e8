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
 * - policy: the node's compiled entries and default-deny identities, keyed like the map.
 */
import { fromCompactEntry, parseEndpoint, type NodePolicyRecord, type PeerRecord, type PolicyEntry } from "@weft/protocol";

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

export interface DesiredPolicy {
  entries: PolicyEntry[];
  defaultDeny: number[];
}

export function desiredPolicy(record: NodePolicyRecord | null): DesiredPolicy {
  if (!record) return { entries: [], defaultDeny: [] };
  return { entries: record.entries.map(fromCompactEntry), defaultDeny: [...record.defaultDeny] };
}
