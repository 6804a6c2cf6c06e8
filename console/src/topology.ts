/**
 * The topology as a graph (pure): clouds contain sites, sites contain nodes, their workloads and
 * the site routes their gateway advertises; tunnels join nodes, classed by the age of their
 * freshest handshake (fresh: within WireGuard's 2-minute rekey plus slack; aging: within its
 * 3-minute session lifetime; stale; never) and by the path the endpoint shows (private: the peer's
 * same-site address; public: its advertised address; nat: an address learned through a NAT).
 */
import type { InventoryView, NodeView } from "@weft/protocol";

export type TunnelAge = "fresh" | "aging" | "stale" | "never";
export type TunnelPath = "private" | "public" | "nat" | "none";

export interface GraphElement {
  group: "nodes" | "edges";
  data: Record<string, string | number | undefined>;
  classes: string;
}

export interface Tunnel {
  a: string;
  b: string;
  ageSeconds: number | undefined;
  age: TunnelAge;
  path: TunnelPath;
}

export function cloudOf(n: NodeView): string {
  return n.instance?.provider ?? n.labels["cloud.provider"] ?? (n.site === "onprem" ? "onprem" : "other");
}

export function ageClass(seconds: number | undefined): TunnelAge {
  if (seconds === undefined) return "never";
  if (seconds <= 135) return "fresh";
  if (seconds <= 180) return "aging";
  return "stale";
}

function pathOf(endpoint: string | undefined, peer: NodeView): TunnelPath {
  if (!endpoint) return "none";
  if (peer.endpoints.private === endpoint) return "private";
  if (peer.endpoints.public === endpoint) return "public";
  return "nat";
}

/** Tunnels between nodes from their heartbeats: one per pair, the freshest handshake of the two sides. */
export function tunnels(nodes: readonly NodeView[], nowMs: number): Tunnel[] {
  const byKey = new Map(nodes.map((n) => [n.wireguardPublicKey, n]));
  const out = new Map<string, Tunnel>();
  for (const n of nodes) {
    for (const p of n.peers ?? []) {
      const peer = byKey.get(p.publicKey);
      if (!peer || peer.nodeId === n.nodeId) continue;
      const [a, b] = [n.nodeId, peer.nodeId].sort() as [string, string];
      const ageSeconds = p.lastHandshake === undefined ? undefined : Math.max(0, Math.round(nowMs / 1000 - p.lastHandshake));
      const candidate: Tunnel = { a, b, ageSeconds, age: ageClass(ageSeconds), path: pathOf(p.endpoint, peer) };
      const got = out.get(`${a}|${b}`);
      if (!got || (ageSeconds !== undefined && (got.ageSeconds === undefined || ageSeconds < got.ageSeconds))) out.set(`${a}|${b}`, candidate);
    }
  }
  return [...out.values()];
}

export function topologyElements(nodes: readonly NodeView[], inventory: InventoryView | undefined, nowMs: number): GraphElement[] {
  const els: GraphElement[] = [];
  const clouds = new Set<string>();
  const sites = new Set<string>();
  for (const n of nodes) {
    const cloud = cloudOf(n);
    if (!clouds.has(cloud)) {
      clouds.add(cloud);
      els.push({ group: "nodes", data: { id: `cloud:${cloud}`, label: cloud }, classes: "cloud" });
    }
    const site = `site:${cloud}:${n.site}`;
    if (!sites.has(site)) {
      sites.add(site);
      els.push({ group: "nodes", data: { id: site, label: `site ${n.site}`, parent: `cloud:${cloud}` }, classes: "site" });
    }
    const gateway = (n.siteRoutes ?? []).length > 0;
    els.push({
      group: "nodes",
      data: { id: n.nodeId, label: `${n.name}\n${n.overlayAddress}`, name: n.name, parent: site, status: n.status },
      classes: `host ${n.status}${gateway ? " gateway" : ""}`,
    });
    for (const w of n.workloads ?? []) {
      const id = `wl:${n.nodeId}:${w.name}`;
      els.push({ group: "nodes", data: { id, label: w.name, parent: site }, classes: "workload" });
      els.push({ group: "edges", data: { id: `e:${id}`, source: n.nodeId, target: id }, classes: "hosts" });
    }
    if (gateway) {
      const id = `routes:${n.nodeId}`;
      els.push({ group: "nodes", data: { id, label: (n.siteRoutes ?? []).join("\n"), parent: site }, classes: "route" });
      els.push({ group: "edges", data: { id: `e:${id}`, source: n.nodeId, target: id }, classes: "advertises" });
    }
  }
  // Site routes the inventory knows but no gateway carries: shown as withheld.
  for (const r of inventory?.siteRoutes ?? []) {
    if (r.gateway || r.cidrs.length === 0) continue;
    const site = [...sites].find((s) => s.endsWith(`:${r.site}`));
    if (!site) continue;
    els.push({ group: "nodes", data: { id: `routes:${site}`, label: `${r.cidrs.join("\n")}\n(no gateway)`, parent: site }, classes: "route withheld" });
  }
  for (const t of tunnels(nodes, nowMs)) {
    els.push({
      group: "edges",
      data: { id: `t:${t.a}:${t.b}`, source: t.a, target: t.b, age: t.ageSeconds, path: t.path },
      classes: `tunnel ${t.age} path-${t.path}`,
    });
  }
  return els;
}
