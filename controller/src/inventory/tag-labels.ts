/**
 * Labels and identity of a node bound to a cloud instance, derived from its instance's tags (pure).
 * (Not to be confused with identity/labels.ts: the join-key labels that name an identity.)
 *
 * Labels: the node keeps the labels it enrolled with (its join key's or enrollment policy's) and
 * gets, from the inventory,
 *   cloud.provider, cloud.account, cloud.region, cloud.zone, cloud.instance   the instance's facts
 *   cloud.tag.<tag key>                                                        one per tag
 * Every `cloud.` label belongs to the inventory: recomputed after each sync (a join key's own
 * `cloud.` labels are replaced). Tag keys are made label keys by replacing each character outside
 * letters, digits and `_.:/-` with `_` and cutting the whole key at 63 characters; when two tags
 * end up with one key, the first tag key in sort order wins and the other is reported. A value
 * longer than 253 characters is left out and reported.
 *
 * Identity: tags `weft:identity` (a whole SPIFFE ID) or `weft:namespace` / `weft:serviceaccount`
 * — also spelt `weft-…` or `weft_…`, for GCP whose label keys cannot hold `:` — name the node's
 * identity and win over the enrollment labels; validated like a join key's identity labels.
 * Without identity tags the identity comes from the enrollment labels, as at enrollment.
 */
import { IdentityLabels, labelKey, type Identity, type NodeRecord } from "@weft/protocol";
import { ValidationError } from "../errors.js";
import { spiffeIdFromLabels, validateIdentityLabels } from "../identity/labels.js";
import type { StoredInstance } from "./store.js";

export const CLOUD_LABEL_PREFIX = "cloud.";
export const CLOUD_TAG_PREFIX = "cloud.tag.";
const MAX_KEY = 63;
const MAX_VALUE = 253;

export interface DerivedLabels {
  labels: Record<string, string>;
  /** Tags that could not become labels, and why. */
  skipped: { tag: string; reason: string }[];
}

/** A tag key as a label key under `cloud.tag.`. */
export function tagLabelKey(tag: string): string {
  return `${CLOUD_TAG_PREFIX}${tag.replace(/[^A-Za-z0-9_.:/-]/g, "_")}`.slice(0, MAX_KEY);
}

/** The `cloud.` labels of a node bound to `instance`. */
export function cloudLabels(instance: Pick<StoredInstance, "provider" | "account" | "region" | "zone" | "id" | "tags">): DerivedLabels {
  const labels: Record<string, string> = {};
  const skipped: DerivedLabels["skipped"] = [];
  const facts: [string, string | undefined][] = [
    ["cloud.provider", instance.provider],
    ["cloud.account", instance.account],
    ["cloud.region", instance.region],
    ["cloud.zone", instance.zone],
    ["cloud.instance", instance.id],
  ];
  for (const [k, v] of facts) if (v !== undefined && v !== "" && v.length <= MAX_VALUE) labels[k] = v;
  for (const tag of Object.keys(instance.tags).sort()) {
    const value = instance.tags[tag] ?? "";
    const key = tagLabelKey(tag);
    if (!labelKey.safeParse(key).success) skipped.push({ tag, reason: `${key} is not a label key` });
    else if (value.length > MAX_VALUE) skipped.push({ tag, reason: `value longer than ${MAX_VALUE} characters` });
    else if (key in labels) skipped.push({ tag, reason: `label ${key} is already taken by another tag` });
    else labels[key] = value;
  }
  return { labels, skipped };
}

/** The identity labels an instance's tags carry (`weft:identity`, `weft:namespace`, `weft:serviceaccount`). */
export function identityTags(tags: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  const wanted = [IdentityLabels.spiffeId, IdentityLabels.namespace, IdentityLabels.serviceAccount];
  for (const label of wanted) {
    const suffix = label.slice("weft:".length);
    for (const sep of [":", "-", "_"]) {
      const v = tags[`weft${sep}${suffix}`];
      if (v !== undefined) {
        out[label] = v;
        break;
      }
    }
  }
  return out;
}

export interface DesiredNode {
  labels: Record<string, string>;
  spiffeId: string;
  /** From the tags (`tags`) or the enrollment labels (`labels`). */
  identitySource: "tags" | "labels";
  /** Problems to report: tags left out, identity tags refused (the enrollment identity is kept then). */
  problems: string[];
}

/** What a bound node's labels and SPIFFE ID should be, given its record and its instance. */
export function desiredNode(node: Pick<NodeRecord, "labels">, instance: StoredInstance, trustDomain: string): DesiredNode {
  const base = Object.fromEntries(Object.entries(node.labels).filter(([k]) => !k.startsWith(CLOUD_LABEL_PREFIX)));
  const derived = cloudLabels(instance);
  const problems = derived.skipped.map((s) => `tag ${JSON.stringify(s.tag)}: ${s.reason}`);
  const labels = { ...base, ...derived.labels };
  const fromTags = identityTags(instance.tags);
  if (Object.keys(fromTags).length > 0) {
    try {
      validateIdentityLabels(fromTags, trustDomain);
      return { labels, spiffeId: spiffeIdFromLabels(fromTags, trustDomain), identitySource: "tags", problems };
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      const why = (err.details ?? []).map((d) => `${d.path.replace(/^labels\.?/, "tag ")}: ${d.message}`).join("; ");
      problems.push(`identity tags refused, the enrollment identity stays: ${why || err.message}`);
    }
  }
  return { labels, spiffeId: spiffeIdFromLabels(base, trustDomain), identitySource: "labels", problems };
}

/** Two label sets with the same keys and values. */
export function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
}

/** `node` with these labels and identity, or undefined when it has them already. */
export function relabelledNode<N extends Pick<NodeRecord, "labels" | "identity">>(node: N, labels: Record<string, string>, identity: Identity): N | undefined {
  if (sameLabels(node.labels, labels) && node.identity?.id === identity.id && node.identity.spiffeId === identity.spiffeId) return undefined;
  return { ...node, labels, identity };
}
