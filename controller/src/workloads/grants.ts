/**
 * Which workload identities a node may hold (pure). The one decision both the workloads service
 * (a node's workloads) and SVID signing (the SPIFFE Workload API) ask: a node may hold its own
 * identity, and the `<namespace>/<serviceAccount>` identities that what vouched for it grants —
 * the label `weft:workload-identities` of its join key or enrollment policy, or the same tag on its
 * instance (`weft:workload-identities`, `weft-workload-identities`, `weft_workload-identities`,
 * which the inventory turns into `cloud.tag.…` labels). Nothing else: an agent's own word grants
 * nothing.
 *
 * Grant syntax (entries separated by commas or white space):
 *   shop/web     the service account web of namespace shop
 *   shop/*       every service account of namespace shop
 *   *            any identity of the trust domain
 *   shop_web     the same as shop/web, for GCP labels (whose values cannot hold `/`, `*` or `,`)
 * The older label `weft:workload-namespaces` (namespaces, or `*`) grants `<namespace>/*` each.
 * A key's or policy's grants are checked when it is created (grantLabelIssues); a tag's bad
 * entries are ignored (tags are cloud input).
 */
import { SPIFFE_ID_PATTERN, WORKLOAD_IDENTITIES_LABEL, WORKLOAD_NAMESPACES_LABEL, nodeName, type Identity } from "@weft/protocol";
import { tagLabelKey } from "../inventory/tag-labels.js";

/** One granted identity pattern: `serviceAccount` "*" = any of the namespace; namespace "*" = any. */
export interface WorkloadGrant {
  namespace: string;
  serviceAccount: string;
}

export interface WorkloadIdentityName {
  namespace: string;
  serviceAccount: string;
}

const SERVICE_ACCOUNT = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
/** The instance tags that grant workload identities, as node labels (computed on use: tag-labels.ts and this module import each other's neighbours). */
const grantTagLabels = () => ["weft:workload-identities", "weft-workload-identities", "weft_workload-identities"].map(tagLabelKey);

/** Parses one grant list; `bad` lists the entries that are not a grant. */
export function parseGrants(text: string): { grants: WorkloadGrant[]; bad: string[] } {
  const grants: WorkloadGrant[] = [];
  const bad: string[] = [];
  for (const entry of text.split(/[\s,]+/).filter((e) => e !== "")) {
    if (entry === "*") {
      grants.push({ namespace: "*", serviceAccount: "*" });
      continue;
    }
    const m = /^([^/_]+)[/_](.+)$/.exec(entry);
    const ns = m?.[1];
    const sa = m?.[2];
    if (ns === undefined || sa === undefined || !nodeName.safeParse(ns).success || (sa !== "*" && !SERVICE_ACCOUNT.test(sa))) bad.push(entry);
    else grants.push({ namespace: ns, serviceAccount: sa });
  }
  return { grants, bad };
}

/** Every grant a node's labels carry (its key's or policy's labels and its instance's tag labels). */
export function workloadGrants(labels: Readonly<Record<string, string>>): WorkloadGrant[] {
  const out: WorkloadGrant[] = [];
  for (const key of [WORKLOAD_IDENTITIES_LABEL, ...grantTagLabels()]) {
    const v = labels[key];
    if (v !== undefined) out.push(...parseGrants(v).grants);
  }
  const namespaces = labels[WORKLOAD_NAMESPACES_LABEL];
  if (namespaces !== undefined) {
    for (const ns of namespaces.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
      if (ns === "*") out.push({ namespace: "*", serviceAccount: "*" });
      else if (nodeName.safeParse(ns).success) out.push({ namespace: ns, serviceAccount: "*" });
    }
  }
  return out;
}

/** The namespace and service account of a SPIFFE ID, or undefined when it is not one. */
export function identityName(spiffeId: string): WorkloadIdentityName | undefined {
  const m = SPIFFE_ID_PATTERN.exec(spiffeId);
  return m?.[3] !== undefined && m[5] !== undefined ? { namespace: m[3], serviceAccount: m[5] } : undefined;
}

/**
 * Whether a node with these labels and identity may hold `want` (`namespace`/`serviceAccount` in
 * the controller's trust domain): its own identity, or one its grants cover.
 */
export function mayHoldIdentity(node: { labels: Readonly<Record<string, string>>; identity?: Pick<Identity, "spiffeId"> | undefined }, want: WorkloadIdentityName): boolean {
  const own = node.identity ? identityName(node.identity.spiffeId) : undefined;
  if (own && own.namespace === want.namespace && own.serviceAccount === want.serviceAccount) return true;
  return workloadGrants(node.labels).some(
    (g) => (g.namespace === "*" || g.namespace === want.namespace) && (g.serviceAccount === "*" || g.serviceAccount === want.serviceAccount),
  );
}

/** How a node's grants read in a refusal: `shop/web, shop/*` or `none`. */
export function describeGrants(node: { labels: Readonly<Record<string, string>>; identity?: Pick<Identity, "spiffeId"> | undefined }): string {
  const own = node.identity ? identityName(node.identity.spiffeId) : undefined;
  const all = [...(own ? [`${own.namespace}/${own.serviceAccount} (its own)`] : []), ...workloadGrants(node.labels).map((g) => (g.namespace === "*" ? "*" : `${g.namespace}/${g.serviceAccount}`))];
  return all.length > 0 ? [...new Set(all)].join(", ") : "none";
}

/** Problems with the grant labels a join key or enrollment policy would carry, as `labels.<key>: …`. */
export function grantLabelIssues(labels: Readonly<Record<string, string>>): { path: string; message: string }[] {
  const v = labels[WORKLOAD_IDENTITIES_LABEL];
  if (v === undefined) return [];
  const { grants, bad } = parseGrants(v);
  if (bad.length > 0 || grants.length === 0) {
    return [{ path: `labels.${WORKLOAD_IDENTITIES_LABEL}`, message: `must list <namespace>/<serviceAccount>, <namespace>/* or * (comma or space separated)${bad.length > 0 ? `; not a grant: ${bad.slice(0, 5).map((b) => JSON.stringify(b.slice(0, 64))).join(", ")}` : ""}` }];
  }
  return [];
}
