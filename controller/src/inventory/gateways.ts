/**
 * Which node advertises which site routes (pure).
 *
 * A node is a gateway when its label `weft:gateway` is `true` (from its join key or enrollment
 * policy) or its instance carries the tag `weft:gateway` (`weft-gateway`, `weft_gateway`) = `true`,
 * and its site was vouched for (its join key's or enrollment policy's site, or its instance's
 * network; a node that only named its site itself is never a gateway).
 * Each site with gateways gets exactly one advertiser, so a CIDR is never routed to two peers, and
 * the advertiser is sticky: the node advertising now keeps the routes while it is online, whatever
 * joins later; only when it goes offline does the first online gateway by name take over (else one
 * not yet heard from since the controller started, else the current one, else the first), and the
 * new advertiser keeps them when the old one returns.
 *
 * A site's CIDRs are advertised except those withheld, each with its reason (route-screen.ts):
 * overlapping another network, the overlay's ranges, the controller's addresses or a tunnel
 * endpoint, or outside private space without the site's explicit allowance.
 */
import { GATEWAY_LABEL, type InventorySiteRoute, type NodeView, type SiteRemap } from "@weft/protocol";
import { siteVouched } from "../enroll/site.js";
import { screenSiteRoute, type RouteScreen } from "./route-screen.js";
import { tagLabelKey } from "./tag-labels.js";
import type { PlainSiteRoute } from "./routes.js";

export type { ReservedRange } from "./route-screen.js";
import type { ReservedRange } from "./route-screen.js";

export type GatewayCandidate = Pick<NodeView, "nodeId" | "name" | "site" | "labels" | "status" | "siteSource"> & Partial<Pick<NodeView, "siteRoutes">>;

const GATEWAY_TAGS = ["weft:gateway", "weft-gateway", "weft_gateway"].map(tagLabelKey);

/** Whether the node's labels make it a gateway of its site. */
export function isGateway(labels: Record<string, string>): boolean {
  return [GATEWAY_LABEL, ...GATEWAY_TAGS].some((k) => labels[k]?.toLowerCase() === "true");
}

export interface GatewayPlan {
  siteRoutes: InventorySiteRoute[];
  /** CIDRs each advertising node routes, by node id; nodes advertising nothing are absent. */
  byNode: Map<string, string[]>;
  /** Which of a node's advertised CIDRs are remapped prefixes, and their real ranges. */
  remapsByNode: Map<string, SiteRemap[]>;
  /** Of those, the ones outside private space the site's config allows explicitly (agents accept only these public ranges). */
  explicitByNode: Map<string, string[]>;
  /** Every gateway node of a site with routes, chosen or standing by (their liveness decides). */
  candidates: GatewayCandidate[];
}

const PREFERENCE: Record<NodeView["status"], number> = { online: 0, "never-seen": 1, offline: 2 };

export interface GatewayPlanInput {
  siteRoutes: readonly PlainSiteRoute[];
  nodes: readonly GatewayCandidate[];
  /** What no site route may cover (route-screen.ts); `reserved` alone is the overlay's ranges. */
  screen?: Omit<RouteScreen, "site" | "reserved">;
  reserved: readonly ReservedRange[];
  /** site → (real CIDR → remapped prefix), from remap.ts. */
  remaps?: ReadonlyMap<string, ReadonlyMap<string, string>>;
}

export function planGateways(input: GatewayPlanInput): GatewayPlan {
  const gatewaysOf = new Map<string, GatewayCandidate[]>();
  for (const n of input.nodes) {
    if (!isGateway(n.labels) || !siteVouched(n)) continue;
    let list = gatewaysOf.get(n.site);
    if (!list) gatewaysOf.set(n.site, (list = []));
    list.push(n);
  }
  const byNode = new Map<string, string[]>();
  const remapsByNode = new Map<string, SiteRemap[]>();
  const explicitByNode = new Map<string, string[]>();
  const candidates: GatewayCandidate[] = [];
  const siteRoutes = input.siteRoutes.map((r): InventorySiteRoute => {
    const screen: RouteScreen = { ...input.screen, site: r.site, reserved: input.reserved };
    const remapOf = input.remaps?.get(r.site);
    const screened = r.cidrs.map((cidr) => {
      // A remapped network is advertised as its prefix: that is what other sites route, so that is what is screened.
      const to = remapOf?.get(cidr);
      return { cidr, to, ...screenSiteRoute(to ?? cidr, to ? [] : r.conflicts, screen) };
    });
    const withheld = screened.flatMap((x) => (x.reason === undefined ? [] : [{ cidr: x.cidr, reason: x.reason }]));
    const ok = screened.filter((x) => x.reason === undefined);
    const open = ok.map((x) => x.to ?? x.cidr);
    const explicit = ok.filter((x) => x.explicit).map((x) => x.to ?? x.cidr);
    const remaps: SiteRemap[] = ok.flatMap((x) => (x.to ? [{ cidr: x.cidr, remapped: x.to }] : []));
    const gateways = r.inferred ? [] : (gatewaysOf.get(r.site) ?? []);
    candidates.push(...gateways);
    // Sticky: the node advertising now stays first among equals in liveness, so only going offline moves the routes.
    const incumbent = (g: GatewayCandidate) => ((g.siteRoutes?.length ?? 0) > 0 ? 0 : 1);
    const chosen = [...gateways].sort((a, b) => PREFERENCE[a.status] - PREFERENCE[b.status] || incumbent(a) - incumbent(b) || a.name.localeCompare(b.name) || a.nodeId.localeCompare(b.nodeId))[0];
    if (chosen && open.length > 0) byNode.set(chosen.nodeId, [...(byNode.get(chosen.nodeId) ?? []), ...open]);
    if (chosen && remaps.length > 0) remapsByNode.set(chosen.nodeId, [...(remapsByNode.get(chosen.nodeId) ?? []), ...remaps]);
    if (chosen && explicit.length > 0) explicitByNode.set(chosen.nodeId, [...(explicitByNode.get(chosen.nodeId) ?? []), ...explicit]);
    return {
      ...r,
      ...(chosen ? { gateway: { nodeId: chosen.nodeId, name: chosen.name } } : {}),
      advertised: chosen ? open : [],
      withheld,
      ...(remaps.length > 0 ? { remaps } : {}),
    };
  });
  return { siteRoutes, byNode, remapsByNode, explicitByNode, candidates };
}
