/**
 * Weft → Istio (pure): what an Istio mesh needs to treat Weft's VMs and workloads as members with
 * the same identities, and to enforce the same L3/L4 policy.
 *
 * - `WorkloadEntry` (networking.istio.io/v1) for every node and workload with an identity of this
 *   trust domain: its overlay address, its service account and namespace (from its SPIFFE ID, so
 *   Istio's principal is the same `<td>/ns/<ns>/sa/<sa>`), the network, the locality, and labels
 *   (`weft/node`, `weft/workload`, `weft/site`, `weft/service-account`, and the node's own labels
 *   that are valid Kubernetes labels; the others are reported).
 * - `ServiceEntry` for every Weft service given (its VIP, DNS name, ports and endpoints; an
 *   endpoint's `ports` maps a port to the backends' target port where the two differ);
 *   `meshServices` turns the controller's service views (`GET /v1/services`) into them.
 * - `AuthorizationPolicy` (security.istio.io/v1), grouped by destination: one `<td>/ns/N/sa/S`
 *   destination is the selector `weft/service-account: S` in namespace N, a namespace destination
 *   is namespace-wide. Per destination, one ALLOW policy holds every allow rule that targets it — or
 *   no rule at all when only deny rules do, which in Istio, as in Weft, makes the destination
 *   default-deny — and one DENY policy holds the deny rules.
 *
 * What the translation keeps exact: identity, namespace and service-account selectors; cidr
 * sources (ipBlocks); TCP ports and ranges; allow, deny, deny-wins and default-deny. What Istio
 * cannot say is refused with the policy and field named (a cidr destination) or, where the mesh
 * simply never sees it, left to the overlay and reported (UDP and ICMP ports: sidecars authorize
 * TCP only). Label selectors are expanded to the identities they select at export time (reported:
 * export again when labels change).
 */
import { SPIFFE_ID_PATTERN, targetPortOf, type NodeView, type Policy, type PortSpec, type Rule, type Selector, type ServiceView } from "@weft/protocol";

export const SERVICE_ACCOUNT_LABEL = "weft/service-account";
export const NODE_LABEL = "weft/node";
export const WORKLOAD_LABEL = "weft/workload";
export const SITE_LABEL = "weft/site";

/** A Weft service as the export needs it (services are the service registry's records). */
export interface MeshService {
  name: string;
  /** The Kubernetes namespace the ServiceEntry goes to. */
  namespace: string;
  /** DNS names, e.g. payments.weft.internal. */
  hosts: string[];
  /** The virtual IP. */
  vip: string;
  /** `targetPort`: where the endpoints listen, when not on `port`. */
  ports: { port: number; protocol: "tcp" | "udp"; name?: string; targetPort?: number }[];
  endpoints: { address: string; serviceAccount?: string; labels?: Record<string, string>; locality?: string }[];
}

/**
 * Weft services (the controller's views) as the export needs them: the service's namespace, its
 * DNS name as host, its VIP and ports, one endpoint per backend address (its service account from
 * its identity, `weft/site` and, for a workload, `weft/workload` as labels). Every backend is
 * listed, healthy or not: Istio applies its own outlier detection.
 */
export function meshServices(views: readonly ServiceView[]): MeshService[] {
  return views.map((v) => {
    const endpoints = new Map<string, MeshService["endpoints"][number]>();
    for (const b of v.backends) {
      if (endpoints.has(b.address)) continue;
      const sa = spiffeParts(b.identity.spiffeId)?.serviceAccount;
      endpoints.set(b.address, { address: b.address, ...(sa ? { serviceAccount: sa } : {}), labels: { [SITE_LABEL]: b.site, ...(b.workload ? { [WORKLOAD_LABEL]: b.workload } : { [NODE_LABEL]: b.node }) } });
    }
    return {
      name: v.service.name,
      namespace: v.service.namespace,
      hosts: [v.dnsName],
      vip: v.vip,
      ports: v.service.ports.map((p) => ({ port: p.port, protocol: p.protocol, ...(p.name ? { name: p.name } : {}), ...(targetPortOf(p) !== p.port ? { targetPort: targetPortOf(p) } : {}) })),
      endpoints: [...endpoints.values()].sort((a, b) => a.address.localeCompare(b.address)),
    };
  });
}

export interface MeshExportInput {
  trustDomain: string;
  nodes: Pick<NodeView, "nodeId" | "name" | "site" | "overlayAddress" | "labels" | "identity" | "workloads">[];
  policies: Policy[];
  services?: MeshService[];
  /** Istio network name of the overlay (every Weft address reaches every other). Default "weft". */
  network?: string;
}

/** A Kubernetes object as plain data (apiVersion, kind, metadata, spec). */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: Record<string, unknown>;
}

export interface MeshExport {
  resources: K8sObject[];
  /** What was left out or approximated, one line each. */
  notes: string[];
}

/** Something Weft's policy says that Istio cannot: `where` names the policy and field. */
export class MeshExportError extends Error {
  override readonly name = "MeshExportError";
  constructor(
    readonly where: string,
    message: string,
  ) {
    super(`${where}: ${message}`);
  }
}

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_PREFIX = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

/** Whether `key: value` is a valid Kubernetes label. */
export function validK8sLabel(key: string, value: string): boolean {
  const slash = key.lastIndexOf("/");
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (prefix !== undefined && (prefix.length > 253 || !LABEL_PREFIX.test(prefix))) return false;
  return LABEL_NAME.test(name) && value.length <= 63 && LABEL_VALUE.test(value);
}

/** `spiffe://td/ns/N/sa/S` → its parts; undefined when it is not that form. */
export function spiffeParts(id: string): { trustDomain: string; namespace: string; serviceAccount: string } | undefined {
  const m = SPIFFE_ID_PATTERN.exec(id);
  return m?.[1] && m[3] && m[5] ? { trustDomain: m[1], namespace: m[3], serviceAccount: m[5] } : undefined;
}

export function exportIstio(input: MeshExportInput): MeshExport {
  const notes: string[] = [];
  const network = input.network ?? "weft";
  const resources: K8sObject[] = [...workloadEntries(input, network, notes), ...(input.services ?? []).map((s) => serviceEntry(s, network)), ...authorizationPolicies(input, notes)];
  return { resources, notes };
}

function workloadEntries(input: MeshExportInput, network: string, notes: string[]): K8sObject[] {
  const out: K8sObject[] = [];
  const entry = (name: string, address: string, spiffeId: string, labels: Record<string, string>, locality: string | undefined): K8sObject | undefined => {
    const id = spiffeParts(spiffeId);
    if (!id || id.trustDomain !== input.trustDomain) {
      notes.push(`${name}: identity ${spiffeId} is not of trust domain ${input.trustDomain}; no WorkloadEntry`);
      return undefined;
    }
    const all = { ...labels, [SERVICE_ACCOUNT_LABEL]: id.serviceAccount };
    return {
      apiVersion: "networking.istio.io/v1",
      kind: "WorkloadEntry",
      metadata: { name, namespace: id.namespace, labels: all },
      spec: { address, labels: all, serviceAccount: id.serviceAccount, network, ...(locality ? { locality } : {}) },
    };
  };
  for (const n of [...input.nodes].sort((a, b) => a.name.localeCompare(b.name))) {
    const nodeLabels: Record<string, string> = {};
    for (const [k, v] of Object.entries(n.labels).sort()) {
      if (validK8sLabel(k, v)) nodeLabels[k] = v;
      else notes.push(`node ${n.name}: label ${JSON.stringify(k)} is not a valid Kubernetes label; left out of its WorkloadEntry`);
    }
    const region = n.labels["cloud.region"];
    const zone = n.labels["cloud.zone"];
    const locality = region ? (zone ? `${region}/${zone}` : region) : undefined;
    const base = { [NODE_LABEL]: n.name, [SITE_LABEL]: n.site };
    if (n.identity) {
      const e = entry(n.name, n.overlayAddress, n.identity.spiffeId, { ...nodeLabels, ...base }, locality);
      if (e) out.push(e);
    }
    for (const w of n.workloads ?? []) {
      const e = entry(`${n.name}-${w.name}`, w.address, w.identity.spiffeId, { ...base, [WORKLOAD_LABEL]: w.name }, locality);
      if (e) out.push(e);
    }
  }
  return out;
}

function serviceEntry(s: MeshService, network: string): K8sObject {
  const portName = (p: MeshService["ports"][number]) => p.name ?? `${p.protocol}-${p.port}`;
  const targetPorts = Object.fromEntries(s.ports.filter((p) => p.targetPort !== undefined).map((p) => [portName(p), p.targetPort]));
  return {
    apiVersion: "networking.istio.io/v1",
    kind: "ServiceEntry",
    metadata: { name: s.name, namespace: s.namespace },
    spec: {
      hosts: s.hosts,
      addresses: [`${s.vip}/32`],
      ports: s.ports.map((p) => ({ number: p.port, name: portName(p), protocol: p.protocol === "udp" ? "UDP" : "TCP" })),
      location: "MESH_INTERNAL",
      resolution: "STATIC",
      endpoints: s.endpoints.map((e) => ({
        address: e.address,
        network,
        ...(e.serviceAccount ? { serviceAccount: e.serviceAccount } : {}),
        ...(e.labels ? { labels: e.labels } : {}),
        ...(e.locality ? { locality: e.locality } : {}),
        ...(Object.keys(targetPorts).length > 0 ? { ports: targetPorts } : {}),
      })),
    },
  };
}

/** A destination: a namespace, or one service account in it. */
interface Destination {
  namespace: string;
  serviceAccount: string | undefined;
}

interface IstioRule {
  from: Record<string, unknown>[];
  to?: Record<string, unknown>[];
}

function authorizationPolicies(input: MeshExportInput, notes: string[]): K8sObject[] {
  const identities = snapshotIdentities(input);
  const byDest = new Map<string, { dest: Destination; allow: IstioRule[]; deny: IstioRule[]; from: Set<string> }>();
  for (const policy of [...input.policies].sort((a, b) => a.name.localeCompare(b.name))) {
    policy.rules.forEach((rule, i) => {
      const where = `policy ${policy.name} rules[${i}]`;
      const from = sources(rule, where, input, identities, notes);
      const ports = tcpPorts(rule, where, notes);
      rule.to.forEach((sel, j) => {
        for (const dest of destinations(sel, `${where}.to[${j}]`, input, identities, notes)) {
          const key = `${dest.namespace}/${dest.serviceAccount ?? ""}`;
          let group = byDest.get(key);
          if (!group) byDest.set(key, (group = { dest, allow: [], deny: [], from: new Set() }));
          group.from.add(`${policy.name}/rules[${i}]`);
          // A rule that allows nothing the mesh sees (no sources, or UDP/ICMP only) still makes its destination default-deny.
          if (from.length === 0 || ports === "none") continue;
          const istioRule: IstioRule = { from, ...(ports === "any" ? {} : { to: [{ operation: { ports } }] }) };
          (rule.action === "allow" ? group.allow : group.deny).push(istioRule);
        }
      });
    });
  }
  const out: K8sObject[] = [];
  for (const { dest, allow, deny, from } of [...byDest.values()].sort((a, b) => `${a.dest.namespace}/${a.dest.serviceAccount ?? ""}`.localeCompare(`${b.dest.namespace}/${b.dest.serviceAccount ?? ""}`))) {
    const suffix = dest.serviceAccount === undefined ? "" : `-sa-${dest.serviceAccount}`;
    const selector = dest.serviceAccount === undefined ? {} : { selector: { matchLabels: { [SERVICE_ACCOUNT_LABEL]: dest.serviceAccount } } };
    const annotations = { "weft/from": [...from].sort().join(", ").slice(0, 1000) };
    out.push({
      apiVersion: "security.istio.io/v1",
      kind: "AuthorizationPolicy",
      metadata: { name: `weft-allow${suffix}`, namespace: dest.namespace, annotations },
      spec: { ...selector, action: "ALLOW", ...(allow.length > 0 ? { rules: allow } : {}) },
    });
    if (deny.length > 0) {
      out.push({
        apiVersion: "security.istio.io/v1",
        kind: "AuthorizationPolicy",
        metadata: { name: `weft-deny${suffix}`, namespace: dest.namespace, annotations },
        spec: { ...selector, action: "DENY", rules: deny },
      });
    }
  }
  return out;
}

/** Every identity known now, with the labels of the nodes that hold it (for label selectors). */
function snapshotIdentities(input: MeshExportInput): { spiffeId: string; labels: Record<string, string> }[] {
  return input.nodes.flatMap((n) => (n.identity ? [{ spiffeId: n.identity.spiffeId, labels: n.labels }] : []));
}

function labelSelected(sel: { labels: Record<string, string> }, identities: { spiffeId: string; labels: Record<string, string> }[]): string[] {
  const wanted = Object.entries(sel.labels);
  return [...new Set(identities.filter((i) => wanted.every(([k, v]) => i.labels[k] === v)).map((i) => i.spiffeId))].sort();
}

function destinations(sel: Selector, where: string, input: MeshExportInput, identities: { spiffeId: string; labels: Record<string, string> }[], notes: string[]): Destination[] {
  if ("cidr" in sel) throw new MeshExportError(where, `a cidr destination (${sel.cidr}) cannot be expressed: Istio authorizes traffic to workloads, not to addresses`);
  if ("namespace" in sel) return [{ namespace: sel.namespace, serviceAccount: sel.serviceAccount }];
  const ids = "identity" in sel ? [sel.identity] : labelSelected(sel, identities);
  if ("labels" in sel) notes.push(`${where}: labels ${JSON.stringify(sel.labels)} expanded to the identities they select now (${ids.join(", ") || "none"}); export again when labels change`);
  return ids.map((id) => {
    const p = spiffeParts(id);
    if (!p || p.trustDomain !== input.trustDomain) throw new MeshExportError(where, `destination ${id} is not of trust domain ${input.trustDomain}: the mesh has no workloads of it`);
    return { namespace: p.namespace, serviceAccount: p.serviceAccount };
  });
}

function sources(rule: Rule, where: string, input: MeshExportInput, identities: { spiffeId: string; labels: Record<string, string> }[], notes: string[]): Record<string, unknown>[] {
  const principals: string[] = [];
  const namespaces: string[] = [];
  const ipBlocks: string[] = [];
  rule.from.forEach((sel, j) => {
    if ("cidr" in sel) ipBlocks.push(sel.cidr);
    else if ("namespace" in sel) {
      if (sel.serviceAccount === undefined) namespaces.push(sel.namespace);
      else principals.push(`${input.trustDomain}/ns/${sel.namespace}/sa/${sel.serviceAccount}`);
    } else {
      const ids = "identity" in sel ? [sel.identity] : labelSelected(sel, identities);
      if ("labels" in sel) notes.push(`${where}.from[${j}]: labels ${JSON.stringify(sel.labels)} expanded to the identities they select now (${ids.join(", ") || "none"}); export again when labels change`);
      for (const id of ids) principals.push(id.replace(/^spiffe:\/\//, ""));
    }
  });
  const uniq = (xs: string[]) => [...new Set(xs)];
  return [
    ...(principals.length ? [{ source: { principals: uniq(principals) } }] : []),
    ...(namespaces.length ? [{ source: { namespaces: uniq(namespaces) } }] : []),
    ...(ipBlocks.length ? [{ source: { ipBlocks: uniq(ipBlocks) } }] : []),
  ];
}

/** The TCP ports of a rule as Istio writes them: "any" (no constraint), a list, or "none" the mesh sees. */
function tcpPorts(rule: Rule, where: string, notes: string[]): string[] | "any" | "none" {
  if (!rule.ports || rule.ports.length === 0) return "any";
  const ports = new Set<number>();
  let anyTcp = false;
  const overlayOnly: PortSpec[] = [];
  for (const p of rule.ports) {
    if (p.protocol === "udp" || p.protocol === "icmp") {
      overlayOnly.push(p);
      continue;
    }
    if (p.port === undefined) {
      anyTcp = true;
      if (p.protocol === "tcp") notes.push(`${where}: tcp on every port is exported as every port (sidecars see TCP only)`);
      continue;
    }
    if (p.protocol === "any") overlayOnly.push({ protocol: "udp", port: p.port, ...(p.endPort ? { endPort: p.endPort } : {}) });
    for (let port = p.port; port <= (p.endPort ?? p.port); port++) ports.add(port);
  }
  if (overlayOnly.length > 0) notes.push(`${where}: ${overlayOnly.map((p) => `${p.protocol}${p.port === undefined ? "" : `/${p.port}${p.endPort ? `-${p.endPort}` : ""}`}`).join(", ")} enforced by the overlay only (Istio authorizes TCP)`);
  if (anyTcp) return "any";
  if (ports.size === 0) return "none";
  return [...ports].sort((a, b) => a - b).map(String);
}
