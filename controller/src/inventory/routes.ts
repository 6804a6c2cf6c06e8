/**
 * Site routes and overlapping address space from the inventory's networks (pure).
 *
 * A network's site is the one the inventory config names for it (`sites`); else the site of the
 * nodes bound to instances in it (the node's `site` from enrollment); else, for an on-prem network, the site its inventory file declares (the account);
 * else it stands for itself, `<provider>:<network id>` (`inferred`). A site's routes are its networks' CIDRs (the VPC / VNet address space, else its
 * subnets'), IPv4 only. Two different networks whose CIDRs overlap are reported, both ways named,
 * with whether they are in one site; their CIDRs are listed as conflicts of their sites and never
 * merged into one route.
 */
import { cidrSize, formatCidr, parseCidr, type InventoryOverlap, type InventorySiteRoute, type Ipv4Cidr } from "@weft/protocol";
import type { StoredInstance, StoredNetwork } from "./store.js";

export interface RoutesInput {
  networks: readonly StoredNetwork[];
  instances: readonly StoredInstance[];
  /** Site of each node that exists, by node id. */
  siteOf: (nodeId: string) => string | undefined;
  /** The site the inventory config says a network is (inventory `sites`); it wins over bound nodes. */
  configuredSite?: (network: StoredNetwork) => string | undefined;
}

/** A site route before its gateway is chosen (gateways.ts). */
export type PlainSiteRoute = Omit<InventorySiteRoute, "gateway" | "advertised" | "withheld">;

export interface RoutesResult {
  siteRoutes: PlainSiteRoute[];
  overlaps: InventoryOverlap[];
}

const netId = (n: Pick<StoredNetwork, "provider" | "account" | "id">) => `${n.provider}\u0000${n.account}\u0000${n.id}`;

/** The address space of a network: its own CIDRs, else its subnets'. */
export function networkCidrs(n: Pick<StoredNetwork, "cidrs" | "subnets">): string[] {
  const own = n.cidrs.length > 0 ? n.cidrs : n.subnets.map((s) => s.cidr);
  return [...new Set(own)];
}

export function siteRoutes(input: RoutesInput): RoutesResult {
  const sitesOf = new Map<string, Set<string>>();
  for (const i of input.instances) {
    if (i.boundNode === undefined) continue;
    const site = input.siteOf(i.boundNode);
    if (site === undefined) continue;
    const k = netId({ provider: i.provider, account: i.account, id: i.network });
    let s = sitesOf.get(k);
    if (!s) sitesOf.set(k, (s = new Set()));
    s.add(site);
  }
  interface Entry {
    network: StoredNetwork;
    sites: string[];
    inferred: boolean;
    cidr: Ipv4Cidr;
    text: string;
  }
  const entries: Entry[] = [];
  const bySite = new Map<string, PlainSiteRoute>();
  for (const n of [...input.networks].sort((a, b) => netId(a).localeCompare(netId(b)))) {
    const configured = input.configuredSite?.(n);
    const known = configured !== undefined ? [configured] : [...(sitesOf.get(netId(n)) ?? [])].sort();
    const declared = known.length === 0 && n.provider === "onprem" ? [n.account] : known;
    const inferred = declared.length === 0;
    const sites = inferred ? [`${n.provider}:${n.id}`] : declared;
    for (const site of sites) {
      let r = bySite.get(site);
      if (!r) bySite.set(site, (r = { site, inferred, cidrs: [], networks: [], conflicts: [] }));
      if (!r.networks.includes(n.id)) r.networks.push(n.id);
    }
    for (const text of networkCidrs(n)) {
      const cidr = parseCidr(text);
      if (!cidr) continue; // IPv6 or malformed: not routed here
      const canonical = formatCidr(cidr);
      entries.push({ network: n, sites, inferred, cidr, text: canonical });
      for (const site of sites) {
        const r = bySite.get(site)!;
        if (!r.cidrs.includes(canonical)) r.cidrs.push(canonical);
      }
    }
  }
  // Sweep in address order: each range is compared with the earlier ones still open.
  entries.sort((a, b) => a.cidr.network - b.cidr.network || a.cidr.prefixLength - b.cidr.prefixLength);
  const overlaps: InventoryOverlap[] = [];
  const open: Entry[] = [];
  for (const e of entries) {
    for (let i = open.length - 1; i >= 0; i--) if (end(open[i]!.cidr) <= e.cidr.network) open.splice(i, 1);
    for (const o of open) {
      if (netId(o.network) === netId(e.network)) continue; // one network's own blocks
      const sameSite = o.sites.some((s) => e.sites.includes(s));
      overlaps.push({ a: side(o), b: side(e), sameSite });
      for (const x of [o, e]) for (const site of x.sites) {
        const r = bySite.get(site)!;
        if (!r.conflicts.includes(x.text)) r.conflicts.push(x.text);
      }
    }
    open.push(e);
  }
  const routes = [...bySite.values()].sort((a, b) => a.site.localeCompare(b.site));
  for (const r of routes) {
    r.cidrs.sort(byAddress);
    r.conflicts.sort(byAddress);
  }
  return { siteRoutes: routes, overlaps };
}

function end(c: Ipv4Cidr): number {
  return c.network + cidrSize(c);
}

function side(e: { network: StoredNetwork; sites: string[]; text: string }): InventoryOverlap["a"] {
  return { provider: e.network.provider, account: e.network.account, network: e.network.id, site: e.sites.join(","), cidr: e.text };
}

function byAddress(a: string, b: string): number {
  const ca = parseCidr(a)!;
  const cb = parseCidr(b)!;
  return ca.network - cb.network || ca.prefixLength - cb.prefixLength;
}

/** One line per overlap, for logs and the CLI. */
export function describeOverlap(o: InventoryOverlap): string {
  return `${o.a.cidr} (${o.a.provider} ${o.a.network}, site ${o.a.site}) overlaps ${o.b.cidr} (${o.b.provider} ${o.b.network}, site ${o.b.site})${o.sameSite ? " in the same site" : ""}`;
}
