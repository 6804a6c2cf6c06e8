/**
 * Which node advertises which site routes (pure).
 *
 * A node is a gateway when its label `weft:gateway` is `true` (from its join key or enrollment
 * policy) or its instance carries the tag `weft:gateway` (`weft-gateway`, `weft_gateway`) = `true`.
 * Each site with gateways gets exactly one advertiser, so a CIDR is never routed to two peers:
 * the first gateway by name among those online, else among those not yet heard from since the
 * controller started, else the first of all (it may come back). A gateway that goes offline hands
 * the routes to the next one; when it returns it takes them back (name order).
 *
 * A site's CIDRs are advertised except those withheld: CIDRs overlapping another network (the
 * inventory's conflicts; never routed silently) and CIDRs overlapping the overlay's own ranges
 * (routing them would hijack overlay traffic). A conflicting CIDR that was given a remapped prefix
 * (remap.ts: it overlaps another site's) is advertised as that prefix instead, and listed in the
 * route's `remaps` and the gateway's `remapsByNode`, so its gateway translates it.
 */
import { cidrsOverlap, GATEWAY_LABEL, parseCidr, type InventorySiteRoute, type NodeView, type SiteRemap } from "@weft/protocol";
import { tagLabelKey } from "./tag-labels.js";
import type { PlainSiteRoute } from "./routes.js";

/** An address range the overlay itself uses, e.g. `{ cidr: "100.64.0.0/10", what: "overlay.cidr" }`. */
export interface ReservedRange {
  cidr: string;
  what: string;
}

export type GatewayCandidate = Pick<NodeView, "nodeId" | "name" | "site" | "labels" | "status">;

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
  /** Every gateway node of a site with routes, chosen or standing by (their liveness decides). */
  candidates: GatewayCandidate[];
}

const PREFERENCE: Record<NodeView["status"], number> = { online: 0, "never-seen": 1, offline: 2 };

export function planGateways(input: {
  siteRoutes: readonly PlainSiteRoute[];
  nodes: readonly GatewayCandidate[];
  reserved: readonly ReservedRange[];
  /** site → (real CIDR → remapped prefix), from remap.ts. */
  remaps?: ReadonlyMap<string, ReadonlyMap<string, string>>;
}): GatewayPlan {
  const gatewaysOf = new Map<string, GatewayCandidate[]>();
  for (const n of input.nodes) {
    if (!isGateway(n.labels)) continue;
    let list = gatewaysOf.get(n.site);
    if (!list) gatewaysOf.set(n.site, (list = []));
    list.push(n);
  }
  const byNode = new Map<string, string[]>();
  const remapsByNode = new Map<string, SiteRemap[]>();
  const candidates: GatewayCandidate[] = [];
  const siteRoutes = input.siteRoutes.map((r): InventorySiteRoute => {
    const remapOf = input.remaps?.get(r.site);
    const withheld = r.cidrs.flatMap((cidr) => {
      const why = withholdReason(cidr, remapOf?.has(cidr) ? [] : r.conflicts, input.reserved);
      return why === undefined ? [] : [{ cidr, reason: why }];
    });
    const remaps: SiteRemap[] = r.cidrs.flatMap((cidr) => {
      const to = remapOf?.get(cidr);
      return to && !withheld.some((w) => w.cidr === cidr) ? [{ cidr, remapped: to }] : [];
    });
    const open = r.cidrs.filter((c) => !withheld.some((w) => w.cidr === c)).map((c) => remapOf?.get(c) ?? c);
    const gateways = r.inferred ? [] : (gatewaysOf.get(r.site) ?? []);
    candidates.push(...gateways);
    const chosen = [...gateways].sort((a, b) => PREFERENCE[a.status] - PREFERENCE[b.status] || a.name.localeCompare(b.name) || a.nodeId.localeCompare(b.nodeId))[0];
    if (chosen && open.length > 0) byNode.set(chosen.nodeId, [...(byNode.get(chosen.nodeId) ?? []), ...open]);
    if (chosen && remaps.length > 0) remapsByNode.set(chosen.nodeId, [...(remapsByNode.get(chosen.nodeId) ?? []), ...remaps]);
    return {
      ...r,
      ...(chosen ? { gateway: { nodeId: chosen.nodeId, name: chosen.name } } : {}),
      advertised: chosen ? open : [],
      withheld,
      ...(remaps.length > 0 ? { remaps } : {}),
    };
  });
  return { siteRoutes, byNode, remapsByNode, candidates };
}

function withholdReason(cidr: string, conflicts: readonly string[], reserved: readonly ReservedRange[]): string | undefined {
  if (conflicts.includes(cidr)) return "overlaps another network in the inventory (see overlaps)";
  const c = parseCidr(cidr);
  if (!c) return "not an IPv4 CIDR";
  for (const r of reserved) {
    const o = parseCidr(r.cidr);
    if (o && cidrsOverlap(c, o)) return `overlaps ${r.what} ${r.cidr}`;
  }
  return undefined;
}
