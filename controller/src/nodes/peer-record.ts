/**
 * A node's public peer record, derived from its node record (pure). Everything an agent reads
 * about a peer is a function of the node record and the controller's config, so the registry
 * rebuilds the peer record from the node record on every change and the two cannot disagree.
 *
 * Records written before workloads, site routes and the session epoch moved into the node record
 * kept them only in the peer record: `adoptPeerState` folds them into the node record once.
 */
import type { NodeRecord, PeerRecord, SameSiteTransport } from "@weft/protocol";
import { siteVouched } from "../enroll/site.js";
import { canonicalJson } from "../store/canonical.js";

/** What the peer record depends on besides the node record. */
export interface PeerDerivation {
  /** overlay.plaintextSites: nodes of these sites say sameSiteTransport "vxlan". */
  plaintextSites: readonly string[];
  /** The record's updatedAt (ISO time). */
  updatedAt: string;
}

/**
 * How a node carries same-site workload traffic: VXLAN when its site allows plaintext and the site
 * was vouched for (a node that only named its site itself never gets plaintext from that site's
 * peers, nor may send them VXLAN carrying an identity).
 */
export function transportOf(node: Pick<NodeRecord, "site" | "siteSource">, plaintextSites: readonly string[]): SameSiteTransport {
  return plaintextSites.includes(node.site) && siteVouched(node) ? "vxlan" : "wireguard";
}

/**
 * Labels every agent may see (peer records are read by every node): a node's labels without the
 * inventory's cloud tags (`cloud.tag.*`, the tenant's free text) and its account and instance ids.
 */
export function publicLabels(labels: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).filter(([k]) => !k.startsWith("cloud.tag.") && k !== "cloud.account" && k !== "cloud.instance"));
}

/** The public record of `node`: allowed IPs = its /32 and its workload prefix; its workloads, site routes and epoch. */
export function peerRecordOf(node: NodeRecord, how: PeerDerivation): PeerRecord {
  const prefix = node.workloadPrefix;
  return {
    version: 1,
    nodeId: node.nodeId,
    name: node.name,
    site: node.site,
    wireguardPublicKey: node.wireguardPublicKey,
    overlayAddress: node.overlayAddress,
    ...(node.identity ? { identity: node.identity } : {}),
    allowedIps: [`${node.overlayAddress}/32`, ...(prefix ? [prefix] : [])],
    ...(node.siteRoutes?.length ? { siteRoutes: [...node.siteRoutes] } : {}),
    ...(node.siteRemaps?.length ? { siteRemaps: node.siteRemaps.map((m) => ({ ...m })) } : {}),
    ...(node.siteRoutes?.length && node.explicitSiteRoutes?.length ? { explicitSiteRoutes: [...node.explicitSiteRoutes] } : {}),
    endpoints: node.endpoints,
    ...(node.sessionEpoch ? { sessionEpoch: node.sessionEpoch } : {}),
    ...(prefix ? { workloadPrefix: prefix, workloads: node.workloads ?? [] } : {}),
    ...(transportOf(node, how.plaintextSites) === "vxlan" ? { sameSiteTransport: "vxlan" as const } : {}),
    ...(node.instance ? { cloud: node.instance.provider } : {}),
    labels: publicLabels(node.labels),
    updatedAt: how.updatedAt,
  };
}

/** Two peer records that say the same to an agent (updatedAt and field order aside). */
export function samePeerRecord(a: PeerRecord, b: PeerRecord): boolean {
  return canonicalJson({ ...a, updatedAt: "" }) === canonicalJson({ ...b, updatedAt: "" });
}

/**
 * `node` with the state an older controller kept only in its peer record (workloads of the same
 * prefix, site routes, session epoch) adopted, for each field the node record does not have yet.
 * Returns `node` itself when there is nothing to adopt.
 */
export function adoptPeerState(node: NodeRecord, peer: PeerRecord | undefined): NodeRecord {
  if (!peer) return node;
  const adopt: Partial<NodeRecord> = {};
  if (node.workloads === undefined && peer.workloads?.length && node.workloadPrefix !== undefined && peer.workloadPrefix === node.workloadPrefix) adopt.workloads = peer.workloads;
  if (node.siteRoutes === undefined && peer.siteRoutes?.length) adopt.siteRoutes = peer.siteRoutes;
  if (node.sessionEpoch === undefined && peer.sessionEpoch !== undefined) adopt.sessionEpoch = peer.sessionEpoch;
  return Object.keys(adopt).length === 0 ? node : { ...node, ...adopt };
}
