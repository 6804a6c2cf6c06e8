/**
 * A new node's site (pure): what vouches for the node says it — its join key's `site`, its
 * enrollment policy's `site`, the site its verified instance's network is (inventory `sites`) —
 * and the agent's request may only agree. Vouchers that disagree refuse the enrollment; with no
 * voucher the agent's own word is taken, recorded as `request` (such a node is never a gateway and
 * never in a plaintext site), and a request without a site is refused.
 */
import type { SiteSource } from "@weft/protocol";

export interface SiteVoucher {
  site: string;
  source: Exclude<SiteSource, "request">;
  /** How logs name the voucher: `join key 0a1b…`, `enrollment policy aws-web`, `network vpc-1`. */
  what: string;
}

export type SiteDecision =
  | { ok: true; site: string; source: SiteSource }
  | { ok: false; reason: "site_mismatch" | "site_conflict" | "site_missing"; message: string };

export function decideSite(requested: string | undefined, vouchers: readonly SiteVoucher[]): SiteDecision {
  const sites = [...new Set(vouchers.map((v) => v.site))];
  if (sites.length > 1) {
    return { ok: false, reason: "site_conflict", message: `what vouches for this node names different sites: ${vouchers.map((v) => `${v.what} says ${v.site}`).join(", ")}; make the join key, enrollment policy and inventory sites agree` };
  }
  const vouched = vouchers[0];
  if (vouched) {
    if (requested !== undefined && requested !== vouched.site) {
      return { ok: false, reason: "site_mismatch", message: `the agent names site ${requested}, but ${vouched.what} says ${vouched.site}; run the agent with --site ${vouched.site} or without --site` };
    }
    return { ok: true, site: vouched.site, source: vouched.source };
  }
  if (requested === undefined) {
    return { ok: false, reason: "site_missing", message: "nothing vouches for this node's site (no site on its join key or enrollment policy, its network is in no inventory site) and the agent names none: pass --site, or set the key's or policy's site" };
  }
  return { ok: true, site: requested, source: "request" };
}

/** Whether a node's site was vouched for (not only the agent's word): gateways and plaintext sites need it. */
export function siteVouched(node: { siteSource?: SiteSource | undefined }): boolean {
  return node.siteSource !== undefined && node.siteSource !== "request";
}
