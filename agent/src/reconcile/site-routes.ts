/**
 * Site routes, both ways. Taking: which networks other sites' gateways advertise this node routes
 * into the overlay (decided by the pure `siteRoutesToTake` against this host's own routes and the
 * endpoints its tunnels go to), routed through the overlay interface. Giving: when this node is its
 * site's gateway (its own record carries `siteRoutes`), forwarding and SNAT into the site
 * (net/gateway.ts), and the 1:1 translation of networks advertised under a remapped prefix
 * (`siteRemaps`, net/remap.ts; SNAT then matches the real range). Owns the last decision, so a refusal is logged once, not on every peer set.
 */
import type { PeerRecord } from "@weft/protocol";
import type { Logger } from "pino";
import type { CommandRunner } from "../exec/runner.js";
import type { GatewayForwarding } from "../net/gateway.js";
import type { SiteRemapping } from "../net/remap.js";
import { localRoutes } from "../net/underlay.js";
import { tunnelEndpoints, type Self } from "../peers/desired.js";
import { siteRouteGateways, siteRoutesToTake, type SiteRouteDecision } from "../peers/site-routes.js";
import type { StatusReporter } from "../status/reporter.js";
import type { OverlayInterface } from "./interface.js";

export interface SiteRouteReconcilerOptions {
  self: Self;
  /** The overlay's ranges: never taken as site routes, and the sources a gateway masquerades. */
  overlayRanges: readonly string[];
  iface: OverlayInterface;
  /** The overlay interface's name (routes through it are the overlay's, not this host's). */
  interfaceName: string;
  gateway: GatewayForwarding;
  /** Translates this site's remapped networks when this node is the gateway. */
  remapping?: SiteRemapping;
  /** Masquerade forwarded traffic as this site's gateway (config `gateway.snat`). */
  snat: boolean;
  /** The controller's API and NATS addresses: never taken into a site route. */
  controller: readonly { address: string; what: string }[];
  run: CommandRunner;
  status: StatusReporter;
  log: Logger;
}

const NOTHING: SiteRouteDecision = { byNode: new Map(), routes: [], refused: [] };

export class SiteRouteReconciler {
  #last: SiteRouteDecision = NOTHING;

  constructor(private readonly o: SiteRouteReconcilerOptions) {}

  /**
   * Which advertised routes to take from these records. Reads this host's routes (when some other
   * site's gateway advertises any: they are checked against them); changes nothing.
   */
  async decide(records: readonly PeerRecord[]): Promise<SiteRouteDecision> {
    const { nodeId, site } = this.o.self;
    if (siteRouteGateways({ nodeId, site }, records).length === 0) return NOTHING;
    const local = await localRoutes(this.o.run, [this.o.interfaceName]).catch((err: unknown) => {
      this.o.log.warn({ err }, "cannot read this host's routes; routing no site routes into the overlay until it can");
      return undefined;
    });
    if (local === undefined) return NOTHING;
    return siteRoutesToTake({ self: { nodeId, site }, peers: records, overlay: this.o.overlayRanges, local, endpoints: tunnelEndpoints(this.o.self, records), controller: this.o.controller });
  }

  /** Fail static: the cached peers' site routes, decided before the interface is brought up with them. */
  async restore(records: readonly PeerRecord[]): Promise<SiteRouteDecision> {
    this.#last = await this.decide(records);
    return this.#last;
  }

  /** Routes what `taken` accepts, forwards into this site when `records` make this node its gateway, and reports both. */
  async apply(records: readonly PeerRecord[], taken: SiteRouteDecision): Promise<void> {
    const { log } = this.o;
    if (await this.o.iface.routeSiteRoutes(taken.routes)) log.info({ routes: taken.routes }, "site routes applied");
    if (taken.refused.length > 0 && JSON.stringify(taken.refused) !== JSON.stringify(this.#last.refused)) log.warn({ refused: taken.refused }, "refusing advertised site routes");
    this.#last = taken;
    const mine = records.find((r) => r.nodeId === this.o.self.nodeId);
    const own = mine?.siteRoutes ?? [];
    const remaps = (mine?.siteRemaps ?? []).filter((m) => own.includes(m.remapped));
    // Forwarded traffic is translated to the real range before SNAT looks at it.
    const real = own.map((r) => remaps.find((m) => m.remapped === r)?.cidr ?? r);
    await this.o.remapping?.apply(remaps, this.o.interfaceName);
    await this.o.gateway.apply({ routes: real, sources: this.o.overlayRanges, overlayInterface: this.o.interfaceName, snat: this.o.snat });
    const names = new Map(records.map((r) => [r.nodeId, r.name]));
    this.o.status.publish({
      siteRoutes: [...taken.byNode].flatMap(([nodeId, cidrs]) => cidrs.map((cidr) => ({ cidr, gateway: names.get(nodeId) ?? nodeId }))),
      refusedSiteRoutes: taken.refused,
      gatewayFor: own,
    });
  }
}
