/**
 * Which advertised site routes this node routes into the overlay (pure).
 *
 * A gateway's peer record lists its site's networks (`siteRoutes`). This node takes a route when
 * the gateway is in another site, and refuses it — with the reason, never silently — when it
 * would capture addresses that are not that site's to take (the controller holds such routes back
 * too, inventory/route-screen.ts; this node checks on its own all the same):
 *   - the overlay's own ranges (node and workload addresses);
 *   - an address of the controller (its API or NATS): the control connection stays out of tunnels;
 *   - a network this host reaches without the overlay (a route of its own on another device:
 *     its LAN, a VPN, a container bridge): local traffic must never be pulled into a tunnel;
 *   - a range holding the endpoint this node sends a peer's tunnel to: the tunnel would loop;
 *   - a range another gateway already routes (the first gateway by node id keeps it; the
 *     controller advertises each CIDR once, so this only guards against a stale record);
 *   - a range outside private and CGNAT space (PRIVATE_RANGES), unless the gateway's record lists it
 *     in `explicitSiteRoutes` (the controller's config allows that CIDR for that site).
 * Same-site gateways are skipped without a report: this node reaches its own site directly.
 */
import { cidrContains, cidrsOverlap, formatCidr, isPrivateCidr, parseCidr, parseIpv4, type Ipv4Cidr, type PeerRecord } from "@weft/protocol";

export interface SiteRouteInput {
  self: { nodeId: string; site: string };
  peers: Iterable<PeerRecord>;
  /** The overlay's ranges (overlay CIDR, workload CIDR). */
  overlay: readonly string[];
  /** Destinations this host routes through any device but the overlay's, default route excluded. */
  local: readonly string[];
  /** Endpoint addresses this node sends tunnels to, with the peer's name. */
  endpoints?: readonly { address: string; peer: string }[];
  /** The controller's API and NATS addresses (net/controller-addresses.ts). */
  controller?: readonly { address: string; what: string }[];
}

export interface RefusedSiteRoute {
  cidr: string;
  /** Name of the gateway that advertised it. */
  gateway: string;
  reason: string;
}

export interface SiteRouteDecision {
  /** Accepted CIDRs by gateway node id. */
  byNode: Map<string, string[]>;
  /** Every accepted CIDR, sorted. */
  routes: string[];
  refused: RefusedSiteRoute[];
}

/** The gateways whose site routes this node considers: other sites' nodes advertising some, by node id. */
export function siteRouteGateways(self: { nodeId: string; site: string }, peers: Iterable<PeerRecord>): PeerRecord[] {
  return [...peers].filter((p) => p.nodeId !== self.nodeId && p.site !== self.site && (p.siteRoutes?.length ?? 0) > 0).sort((a, b) => a.nodeId.localeCompare(b.nodeId));
}

export function siteRoutesToTake(input: SiteRouteInput): SiteRouteDecision {
  const overlay = ranges(input.overlay);
  const local = ranges(input.local);
  const endpoints = (input.endpoints ?? []).flatMap((e) => ranges([`${e.address}/32`]).map((r) => ({ ...r, peer: e.peer })));
  const taken: (Range & { gateway: string })[] = [];
  const byNode = new Map<string, string[]>();
  const refused: RefusedSiteRoute[] = [];
  for (const g of siteRouteGateways(input.self, input.peers)) {
    for (const text of g.siteRoutes ?? []) {
      const cidr = parseCidr(text);
      const reason = cidr === undefined ? "not an IPv4 CIDR" : (coversController(cidr, input.controller ?? []) ?? refusal(cidr, overlay, local, endpoints, taken) ?? publicRange(cidr, g));
      if (reason !== undefined || cidr === undefined) {
        refused.push({ cidr: text, gateway: g.name, reason: reason ?? "not an IPv4 CIDR" });
        continue;
      }
      taken.push({ cidr, text, gateway: g.name });
      byNode.set(g.nodeId, [...(byNode.get(g.nodeId) ?? []), text]);
    }
  }
  return { byNode, routes: taken.map((t) => t.text).sort(), refused };
}

interface Range {
  cidr: Ipv4Cidr;
  text: string;
}

function ranges(list: readonly string[]): Range[] {
  return list.flatMap((text) => {
    const cidr = parseCidr(text);
    return cidr ? [{ cidr, text }] : [];
  });
}

/** A route over the controller's API or NATS address would pull the control connection into a tunnel. */
function coversController(cidr: Ipv4Cidr, controller: readonly { address: string; what: string }[]): string | undefined {
  for (const c of controller) {
    const ip = parseIpv4(c.address);
    if (ip !== undefined && cidrContains(cidr, ip)) return `covers the controller's ${c.what} address ${c.address}`;
  }
  return undefined;
}

/** Public space is someone else's unless the controller allowed that very CIDR for the gateway's site. */
function publicRange(cidr: Ipv4Cidr, gateway: PeerRecord): string | undefined {
  if (isPrivateCidr(cidr)) return undefined;
  const canonical = formatCidr(cidr);
  const explicit = (gateway.explicitSiteRoutes ?? []).some((e) => {
    const p = parseCidr(e);
    return p !== undefined && formatCidr(p) === canonical;
  });
  return explicit ? undefined : "outside private and CGNAT space, and the controller did not allow it for this site";
}

function refusal(cidr: Ipv4Cidr, overlay: Range[], local: Range[], endpoints: (Range & { peer: string })[], taken: (Range & { gateway: string })[]): string | undefined {
  const hit = <R extends Range>(list: R[]) => list.find((r) => cidrsOverlap(r.cidr, cidr));
  const o = hit(overlay);
  if (o) return `overlaps the overlay range ${o.text}`;
  const l = hit(local);
  if (l) return `overlaps ${l.text}, which this host routes without the overlay`;
  const e = hit(endpoints);
  if (e) return `holds ${e.text.replace(/\/32$/, "")}, the endpoint of peer ${e.peer}: its tunnel would loop`;
  const t = hit(taken);
  if (t) return `overlaps ${t.text}, already routed to gateway ${t.gateway}`;
  return undefined;
}
