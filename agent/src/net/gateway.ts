/**
 * The gateway role: when the controller names this node its site's gateway (its own peer record
 * carries `siteRoutes`), overlay traffic for those networks arriving on the WireGuard interface is
 * forwarded into the site, and — unless `gateway.snat` is false — masqueraded to this host's
 * address, so the site's machines answer without a route back to the overlay (as a subnet router
 * does). Without SNAT, the site's router must route the overlay ranges to this host.
 *
 * Rules live in one nat chain of our own, `WEFT-SNAT`, jumped to first from POSTROUTING:
 *   -A WEFT-SNAT -s <overlay range> -d <site route> ! -o <wg interface> -j MASQUERADE
 * The first apply after the agent starts rewrites the chain; later applies add and delete only
 * the rules that changed. With no routes the chain is emptied; forwarding is left on (workloads
 * and VXLAN need it too). Nothing outside the chain and its one jump rule is touched.
 */
import type { Logger } from "pino";
import type { CommandRunner } from "../exec/runner.js";

export const SNAT_CHAIN = "WEFT-SNAT";

export interface GatewayRole {
  /** Site networks this node forwards to; empty: not a gateway. */
  routes: readonly string[];
  /** Overlay source ranges to masquerade (overlay CIDR, workload CIDR). */
  sources: readonly string[];
  /** The WireGuard interface (traffic leaving through it is never masqueraded). */
  overlayInterface: string;
  snat: boolean;
}

export class GatewayForwarding {
  /** Rules in the chain as last written by this agent; undefined before the first apply. */
  private rules: Set<string> | undefined;
  private forwarding = false;
  private last: string | undefined;

  constructor(
    private readonly run: CommandRunner,
    private readonly log: Logger,
  ) {}

  /** Bring forwarding and the chain in line with `role`; a role equal to the last one applied costs nothing. */
  async apply(role: GatewayRole): Promise<void> {
    const key = JSON.stringify(role);
    if (key === this.last) return;
    const want = new Set(role.snat ? role.routes.flatMap((dst) => role.sources.map((src) => ruleSpec(src, dst, role.overlayInterface))) : []);
    if (role.routes.length > 0 && !this.forwarding) {
      await this.run.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
      this.forwarding = true;
    }
    if (this.rules === undefined) {
      if (want.size === 0 && !(await this.chainExists())) {
        this.rules = new Set();
        return;
      }
      await this.ensureChain();
      await this.iptables(["-F", SNAT_CHAIN]);
      this.rules = new Set();
    } else if (want.size > 0) {
      await this.ensureChain();
    }
    for (const spec of want) {
      if (this.rules.has(spec)) continue;
      await this.iptables(["-A", SNAT_CHAIN, ...spec.split(" ")]);
      this.rules.add(spec);
    }
    for (const spec of [...this.rules]) {
      if (want.has(spec)) continue;
      await this.iptables(["-D", SNAT_CHAIN, ...spec.split(" ")]);
      this.rules.delete(spec);
    }
    if (role.routes.length > 0) this.log.info({ routes: role.routes, snat: role.snat }, "forwarding overlay traffic into this site as its gateway");
    else if (this.last !== undefined) this.log.info("no longer this site's gateway");
    this.last = key;
  }

  private async chainExists(): Promise<boolean> {
    try {
      await this.iptables(["-S", SNAT_CHAIN]);
      return true;
    } catch {
      return false;
    }
  }

  private async ensureChain(): Promise<void> {
    if (!(await this.chainExists())) await this.iptables(["-N", SNAT_CHAIN]);
    try {
      await this.iptables(["-C", "POSTROUTING", "-j", SNAT_CHAIN]);
    } catch {
      await this.iptables(["-I", "POSTROUTING", "1", "-j", SNAT_CHAIN]);
    }
  }

  private iptables(args: string[]): Promise<unknown> {
    return this.run.run(["iptables", "-w", "5", "-t", "nat", ...args]);
  }
}

function ruleSpec(src: string, dst: string, overlayInterface: string): string {
  return `-s ${src} -d ${dst} ! -o ${overlayInterface} -j MASQUERADE`;
}
