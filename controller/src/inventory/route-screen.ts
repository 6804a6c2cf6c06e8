/**
 * Whether one site route may be advertised (pure). A route that cannot hijack: it is held back,
 * with the reason `weft inventory list` shows, when it
 *   - overlaps another network of the inventory (a conflict: never routed silently);
 *   - overlaps the overlay's own ranges (node and workload addresses);
 *   - covers an address of the controller (its API or NATS): agents would tunnel their control
 *     connection into a site;
 *   - covers a tunnel endpoint: any node's public endpoint, or the private endpoint of a node in
 *     another site (the WireGuard traffic to it would loop into the tunnel);
 *   - lies outside private and CGNAT space (PRIVATE_RANGES), unless the inventory config names
 *     that CIDR for that site (`sites[].publicRoutes`): `128.0.0.0/1` is half the internet.
 * Agents screen the same routes again on their own (agent/src/peers/site-routes.ts).
 */
import { cidrContains, cidrsOverlap, formatCidr, isPrivateCidr, parseCidr, parseIpv4 } from "@weft/protocol";

/** An address range the overlay itself uses, e.g. `{ cidr: "100.64.0.0/10", what: "overlay.cidr" }`. */
export interface ReservedRange {
  cidr: string;
  what: string;
}

/** A tunnel endpoint: where some node's WireGuard traffic goes. */
export interface TunnelEndpoint {
  address: string;
  node: string;
  site: string;
  kind: "public" | "private";
}

export interface RouteScreen {
  /** The site advertising the route. */
  site: string;
  reserved: readonly ReservedRange[];
  /** The controller's own addresses (API and NATS), with what each is. */
  controllerAddresses?: readonly { address: string; what: string }[];
  endpoints?: readonly TunnelEndpoint[];
  /** CIDRs outside private space that `site` may advertise (inventory `sites[].publicRoutes`). */
  publicRoutes?: (site: string) => readonly string[];
}

export interface ScreenResult {
  /** Why the route is held back; undefined when it may be advertised. */
  reason: string | undefined;
  /** Advertised only because the config names it for the site (outside private space). */
  explicit: boolean;
}

export function screenSiteRoute(text: string, conflicts: readonly string[], s: RouteScreen): ScreenResult {
  const held = (reason: string): ScreenResult => ({ reason, explicit: false });
  if (conflicts.includes(text)) return held("overlaps another network in the inventory (see overlaps)");
  const cidr = parseCidr(text);
  if (!cidr) return held("not an IPv4 CIDR");
  for (const r of s.reserved) {
    const o = parseCidr(r.cidr);
    if (o && cidrsOverlap(cidr, o)) return held(`overlaps ${r.what} ${r.cidr}`);
  }
  for (const c of s.controllerAddresses ?? []) {
    const ip = parseIpv4(c.address);
    if (ip !== undefined && cidrContains(cidr, ip)) return held(`covers the controller's ${c.what} address ${c.address}`);
  }
  for (const e of s.endpoints ?? []) {
    if (e.kind === "private" && e.site === s.site) continue; // the site's own LAN: reached directly inside it
    const ip = parseIpv4(e.address);
    if (ip !== undefined && cidrContains(cidr, ip)) return held(`covers ${e.address}, the ${e.kind} tunnel endpoint of node ${e.node}`);
  }
  if (isPrivateCidr(cidr)) return { reason: undefined, explicit: false };
  const canonical = formatCidr(cidr);
  const allowed = (s.publicRoutes?.(s.site) ?? []).some((a) => {
    const p = parseCidr(a);
    return p !== undefined && formatCidr(p) === canonical;
  });
  if (allowed) return { reason: undefined, explicit: true };
  return held(`outside private and CGNAT space; name it in the inventory config's sites[${s.site}].publicRoutes to advertise it`);
}
