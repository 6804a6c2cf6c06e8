/**
 * The inventory as one view (instances, networks, account statuses, site routes with their
 * gateways, overlapping CIDRs) and the gateway plan computed from it, read from the stored
 * inventory and the node registry. Read by `GET /v1/inventory`, by the sync after each run, and by
 * the site route advertiser (its own passes): none of them depends on another to get a plan.
 */
import { parseEndpoint, type InventoryView, type NodeView } from "@weft/protocol";
import { planGateways, type GatewayPlan, type ReservedRange } from "./gateways.js";
import { planRemaps, remapKey } from "./remap.js";
import type { TunnelEndpoint } from "./route-screen.js";
import { networkCidrs, siteRoutes } from "./routes.js";
import { siteOfNetwork, type SiteConfig } from "./sites.js";
import type { InventoryStore } from "./store.js";

/** The inventory view and which gateway node advertises which site routes. */
export interface InventoryPlan {
  view: InventoryView;
  gateways: GatewayPlan;
}

export interface InventoryPlannerOptions {
  store: Pick<InventoryStore, "instances" | "networks" | "status">;
  /** Every node (NodeRegistry.list): sites, labels and liveness. */
  nodes: () => Promise<NodeView[]>;
  /** The overlay's own ranges (node, workload, service): site CIDRs overlapping them are never advertised, nor remapped into them. */
  reserved?: readonly ReservedRange[];
  /** inventory.remapPool: overlapping networks of different sites get prefixes from it ("" or absent: withheld). */
  remapPool?: string;
  /** The controller's API and NATS addresses: no site route may cover one. */
  controllerAddresses?: readonly { address: string; what: string }[];
  /** The inventory config's sites: networks' sites and the public ranges each may advertise. */
  sites?: readonly SiteConfig[];
}

export class InventoryPlanner {
  constructor(private readonly o: InventoryPlannerOptions) {}

  /** Everything the inventory holds, with site routes, their gateways and overlaps computed from it. */
  async view(): Promise<InventoryView> {
    return (await this.plan()).view;
  }

  /** The view, and the gateway plan it was computed with. */
  async plan(): Promise<InventoryPlan> {
    const [instances, networks, statuses, nodes] = await Promise.all([this.o.store.instances(), this.o.store.networks(), this.o.store.status(), this.o.nodes()]);
    const sites = new Map(nodes.map((n) => [n.nodeId, n.site]));
    const configured = this.o.sites ?? [];
    const { siteRoutes: routes, overlaps } = siteRoutes({ networks, instances, siteOf: (id) => sites.get(id), configuredSite: (n) => siteOfNetwork(configured, n) });
    // Prefixes in use stay where they are: read back from the gateways that advertise them.
    const previous = new Map(nodes.flatMap((n) => (n.siteRemaps ?? []).map((m) => [remapKey(n.site, m.cidr), m.remapped] as const)));
    const remaps = planRemaps({ overlaps, inventoryCidrs: networks.flatMap((n) => networkCidrs(n)), reserved: (this.o.reserved ?? []).map((r) => r.cidr), pool: this.o.remapPool, previous });
    const gateways = planGateways({
      siteRoutes: routes,
      remaps: remaps.bySite,
      nodes,
      reserved: this.o.reserved ?? [],
      screen: {
        controllerAddresses: this.o.controllerAddresses ?? [],
        endpoints: tunnelEndpointsOf(nodes),
        publicRoutes: (site) => configured.find((c) => c.name === site)?.publicRoutes ?? [],
      },
    });
    const sortKey = (x: { provider: string; account: string; id: string }) => `${x.provider}\u0000${x.account}\u0000${x.id}`;
    const view: InventoryView = {
      instances: instances.sort((a, b) => sortKey(a).localeCompare(sortKey(b))),
      networks: networks.sort((a, b) => sortKey(a).localeCompare(sortKey(b))),
      statuses: statuses.sort((a, b) => `${a.provider}:${a.account}`.localeCompare(`${b.provider}:${b.account}`)),
      siteRoutes: gateways.siteRoutes,
      overlaps,
    };
    return { view, gateways };
  }
}

/** Every node's tunnel endpoints (public and private), which no site route may cover. */
export function tunnelEndpointsOf(nodes: readonly Pick<NodeView, "name" | "site" | "endpoints">[]): TunnelEndpoint[] {
  return nodes.flatMap((n) =>
    (["public", "private"] as const).flatMap((kind) => {
      const e = n.endpoints[kind];
      const host = e === undefined ? undefined : parseEndpoint(e)?.host;
      return host === undefined ? [] : [{ address: host, node: n.name, site: n.site, kind }];
    }),
  );
}
