/**
 * Remapped site networks on their gateway: when this node advertises a site network under a
 * remapped prefix (it overlaps another site's network; the controller chose the prefix), overlay
 * traffic to the remapped prefix is translated to the real range on its way in, and site traffic
 * from the real range to the overlay is translated to the remapped prefix on its way out — 1:1,
 * host bits kept (NETMAP), both directions; replies follow conntrack.
 *
 * Rules live in two nat chains of our own, jumped to first from PREROUTING and POSTROUTING:
 *   -A WEFT-REMAP-IN  -i <wg> -d <remapped> -j NETMAP --to <real>
 *   -A WEFT-REMAP-OUT -o <wg> -s <real> -j NETMAP --to <remapped>
 * Rewritten whenever the remaps change; emptied when there are none. Nothing else is touched.
 */
import type { SiteRemap } from "@weft/protocol";
import type { Logger } from "pino";
import type { CommandRunner } from "../exec/runner.js";

export const REMAP_IN_CHAIN = "WEFT-REMAP-IN";
export const REMAP_OUT_CHAIN = "WEFT-REMAP-OUT";

/** The rules of both chains for these remaps (pure). */
export function remapRules(remaps: readonly SiteRemap[], iface: string): { in: string[][]; out: string[][] } {
  return {
    in: remaps.map((m) => ["-i", iface, "-d", m.remapped, "-j", "NETMAP", "--to", m.cidr]),
    out: remaps.map((m) => ["-o", iface, "-s", m.cidr, "-j", "NETMAP", "--to", m.remapped]),
  };
}

export class SiteRemapping {
  #last: string | undefined;

  constructor(
    private readonly run: CommandRunner,
    private readonly log: Logger,
  ) {}

  /** Brings both chains in line with `remaps`; the same remaps as last time cost nothing. */
  async apply(remaps: readonly SiteRemap[], iface: string): Promise<void> {
    const key = JSON.stringify([remaps, iface]);
    if (key === this.#last) return;
    const rules = remapRules(remaps, iface);
    if (remaps.length === 0 && this.#last === undefined && !(await this.#exists(REMAP_IN_CHAIN))) {
      this.#last = key;
      return;
    }
    await this.#chain(REMAP_IN_CHAIN, "PREROUTING", rules.in);
    await this.#chain(REMAP_OUT_CHAIN, "POSTROUTING", rules.out);
    if (remaps.length > 0) this.log.info({ remaps }, "translating remapped site networks (NETMAP) as this site's gateway");
    else if (this.#last !== undefined) this.log.info("no remapped site networks any more");
    this.#last = key;
  }

  async #exists(chain: string): Promise<boolean> {
    return this.#ipt("-S", chain).then(
      () => true,
      () => false,
    );
  }

  async #chain(chain: string, from: string, rules: string[][]): Promise<void> {
    if (!(await this.#exists(chain))) await this.#ipt("-N", chain);
    await this.#ipt("-C", from, "-j", chain).catch(() => this.#ipt("-I", from, "1", "-j", chain));
    await this.#ipt("-F", chain);
    for (const r of rules) await this.#ipt("-A", chain, ...r);
  }

  #ipt(...args: string[]): Promise<unknown> {
    return this.run.run(["iptables", "-w", "5", "-t", "nat", ...args]);
  }
}
