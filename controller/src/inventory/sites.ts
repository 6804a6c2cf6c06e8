/**
 * Which site a cloud network is (pure): the inventory config's `sites`, each a site name, the
 * networks (VPC / VNet / GCE network, optionally one subnet of it) that are that site, and the
 * address ranges outside private space its gateway may advertise. Enrollment takes the site of a
 * node whose instance it verified from here (what vouches for the site, beside a join key's or an
 * enrollment policy's); the site route plan takes a network's site from here first; the route
 * screen (route-screen.ts) reads `publicRoutes`.
 */
import { CloudProvider, cidr, siteName } from "@weft/protocol";
import { z } from "zod";
import type { StoredInstance, StoredNetwork } from "./store.js";

export const SiteNetwork = z
  .object({
    provider: CloudProvider,
    /** AWS account, Azure subscription, GCP project; absent: any account. */
    account: z.string().min(1).max(256).optional(),
    /** VPC id, VNet resource id (or just its name: the last segment of the id), GCE network name, on-prem network id. */
    network: z.string().min(1).max(512),
    /** Only instances in this subnet (its id as the inventory lists it); absent: the whole network. */
    subnet: z.string().min(1).max(512).optional(),
  })
  .strict();
export type SiteNetwork = z.infer<typeof SiteNetwork>;

export const SiteConfig = z
  .object({
    name: siteName,
    networks: z.array(SiteNetwork).default([]),
    /**
     * CIDRs outside private, CGNAT and ULA space this site's gateway may advertise (each must be
     * named exactly). Default none: a public range in a site's networks is held back.
     */
    publicRoutes: z.array(cidr).default([]),
  })
  .strict();
export type SiteConfig = z.infer<typeof SiteConfig>;

/** `sites` must not map one network (and subnet) to two sites, nor name a site twice. */
export function siteConfigIssues(sites: readonly SiteConfig[]): { path: (string | number)[]; message: string }[] {
  const issues: { path: (string | number)[]; message: string }[] = [];
  const names = new Map<string, number>();
  const owner = new Map<string, string>();
  sites.forEach((s, i) => {
    const first = names.get(s.name);
    if (first !== undefined) issues.push({ path: [i, "name"], message: `site ${s.name} is already configured as sites.${first}` });
    else names.set(s.name, i);
    s.networks.forEach((n, j) => {
      const key = JSON.stringify([n.provider, n.account ?? "", n.network, n.subnet ?? ""]);
      const other = owner.get(key);
      if (other !== undefined && other !== s.name) issues.push({ path: [i, "networks", j], message: `${n.provider} network ${n.network}${n.subnet ? ` subnet ${n.subnet}` : ""} is already site ${other}` });
      else owner.set(key, s.name);
    });
  });
  return issues;
}

/** A configured network names the inventory's: equal, or (an Azure resource id) its last segment. */
function sameNetwork(configured: string, listed: string): boolean {
  return configured === listed || (listed.includes("/") && !configured.includes("/") && listed.slice(listed.lastIndexOf("/") + 1).toLowerCase() === configured.toLowerCase());
}

/** How specific a match is: a subnet beats a whole network, a named account beats any account. */
function specificity(n: SiteNetwork): number {
  return (n.subnet !== undefined ? 2 : 0) + (n.account !== undefined ? 1 : 0);
}

/** The site `instance`'s network (and subnet) is, by the most specific matching entry; undefined when none matches or the best matches disagree. */
export function siteOfInstance(sites: readonly SiteConfig[], instance: Pick<StoredInstance, "provider" | "account" | "network" | "subnet">): string | undefined {
  let best = -1;
  let found = new Set<string>();
  for (const s of sites) {
    for (const n of s.networks) {
      if (n.provider !== instance.provider || !sameNetwork(n.network, instance.network)) continue;
      if (n.account !== undefined && n.account !== instance.account) continue;
      if (n.subnet !== undefined && n.subnet !== instance.subnet) continue;
      const rank = specificity(n);
      if (rank > best) {
        best = rank;
        found = new Set([s.name]);
      } else if (rank === best) found.add(s.name);
    }
  }
  return found.size === 1 ? [...found][0] : undefined;
}

/** The site a whole network is (entries without a subnet only), or undefined. */
export function siteOfNetwork(sites: readonly SiteConfig[], network: Pick<StoredNetwork, "provider" | "account" | "id">): string | undefined {
  const whole = sites.map((s) => ({ ...s, networks: s.networks.filter((n) => n.subnet === undefined) }));
  return siteOfInstance(whole, { provider: network.provider, account: network.account, network: network.id, subnet: undefined });
}
