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

export interface Point {
  x: number;
  y: number;
}

const SLOT_W = 130; // one host column
const HOST_H = 56; // a host's box and the gap under it
const ROW_H = 34; // one workload or route under its host
const SITE_PAD = 50; // a site's label and margin
const CLOUD_GAP = 70;
const CLOUDS_PER_ROW = 3;

/**
 * Where each leaf node goes (pure; cytoscape's "preset" layout places them and derives the boxes
 * of clouds and sites): clouds side by side, three to a row; a cloud's sites stacked; in a site,
 * its hosts in a row, each with its workloads and advertised routes in a column below it, and a
 * withheld route last in the row. Deterministic, so the map does not move between refreshes.
 */
export function layoutPositions(elements: readonly GraphElement[]): Map<string, Point> {
  const nodes = elements.filter((e) => e.group === "nodes");
  const owner = new Map<string, string>(); // workload or route → its host
  for (const e of elements) if (e.group === "edges" && /\b(hosts|advertises)\b/.test(e.classes)) owner.set(String(e.data["target"]), String(e.data["source"]));
  const childrenOf = (parent: string) => nodes.filter((n) => n.data["parent"] === parent);
  const byLabel = (a: GraphElement, b: GraphElement) => String(a.data["name"] ?? a.data["label"]).localeCompare(String(b.data["name"] ?? b.data["label"]));
  const out = new Map<string, Point>();
  const clouds = nodes.filter((n) => n.classes.split(" ").includes("cloud")).sort(byLabel);
  let rowX = 0;
  let rowY = 0;
  let rowH = 0;
  clouds.forEach((cloud, i) => {
    if (i > 0 && i % CLOUDS_PER_ROW === 0) {
      rowX = 0;
      rowY += rowH + CLOUD_GAP;
      rowH = 0;
    }
    let y = rowY;
    let width = SLOT_W;
    for (const site of childrenOf(String(cloud.data["id"])).sort(byLabel)) {
      const inSite = childrenOf(String(site.data["id"]));
      const hosts = inSite.filter((n) => n.classes.split(" ").includes("host")).sort(byLabel);
      const loose = inSite.filter((n) => !n.classes.split(" ").includes("host") && !hosts.some((h) => h.data["id"] === owner.get(String(n.data["id"])))).sort(byLabel);
      let deepest = 0;
      hosts.forEach((host, col) => {
        const x = rowX + col * SLOT_W;
        out.set(String(host.data["id"]), { x, y });
        const below = inSite.filter((n) => owner.get(String(n.data["id"])) === host.data["id"]).sort(byLabel);
        below.forEach((n, k) => out.set(String(n.data["id"]), { x, y: y + HOST_H + k * ROW_H }));
        deepest = Math.max(deepest, below.length);
      });
      loose.forEach((n, k) => out.set(String(n.data["id"]), { x: rowX + (hosts.length + k) * SLOT_W, y }));
      width = Math.max(width, (hosts.length + loose.length) * SLOT_W);
      y += HOST_H + deepest * ROW_H + SITE_PAD;
    }
    rowX += width + CLOUD_GAP;
    rowH = Math.max(rowH, y - rowY);
  });
  return out;
}
