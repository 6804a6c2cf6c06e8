/**
 * The overlay interface as the agent wants it: key, port, MTU, this node's overlay address, and
 * routes for the overlay's ranges plus the site routes taken from other sites' gateways (the
 * site-routes reconciler sets those). It owns the session epoch as well: an interface created
 * afresh has no sessions, so it gets a new epoch (peers/epochs.ts) that tells peers behind NAT to
 * handshake again.
 */
import type { Logger } from "pino";
import { newSessionEpoch } from "../peers/epochs.js";
import type { StateHolder } from "../state/holder.js";
import type { EnsureOptions, WireGuard } from "../wireguard/index.js";

export interface OverlayInterfaceOptions {
  wireguard: WireGuard;
  state: StateHolder;
  /** Everything of the interface but its routes. */
  settings: Omit<EnsureOptions, "routes">;
  /** The overlay's ranges (overlay CIDR, workload CIDR): always routed into the interface. */
  overlayRanges: readonly string[];
  log: Logger;
}

export class OverlayInterface {
  #siteRoutes: readonly string[] = [];

  constructor(private readonly o: OverlayInterfaceOptions) {}

  /** Creates the interface or converges it, with these site routes; renews the session epoch when it was created (or none was kept). */
  async bringUp(siteRoutes: readonly string[]): Promise<void> {
    const ensured = await this.#ensure(siteRoutes);
    if (ensured.created || !this.o.state.current.sessionEpoch) {
      await this.o.state.update({ sessionEpoch: newSessionEpoch() });
      this.o.log.info({ created: ensured.created }, "new session epoch: peers behind NAT handshake again");
    }
  }

  /** Routes exactly these site routes into the interface (beside the overlay's ranges). False when they were already routed. */
  async routeSiteRoutes(routes: readonly string[]): Promise<boolean> {
    if (routes.join() === this.#siteRoutes.join()) return false;
    await this.#ensure(routes);
    return true;
  }

  async #ensure(siteRoutes: readonly string[]) {
    const ensured = await this.o.wireguard.ensure({ ...this.o.settings, routes: [...this.o.overlayRanges, ...siteRoutes] });
    this.#siteRoutes = [...siteRoutes];
    return ensured;
  }
}
