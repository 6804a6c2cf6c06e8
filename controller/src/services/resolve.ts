/**
 * Which workloads and nodes serve a service: its selectors resolved against the node records
 * (each node and each of its workloads is a candidate with an identity, a site and a cloud).
 * Pure. `identity` and `namespace`/`serviceAccount` selectors match nodes and workloads alike;
 * `labels` match nodes (labels are node labels); `sites` and `nodes` narrow any of them. A
 * backend in several subsets belongs to the first; the result is sorted by address.
 */
import { SPIFFE_ID_PATTERN, type BackendSelector, type Identity, type NodeRecord, type Service } from "@weft/protocol";

/** A node's cloud: the provider of the instance it proved it runs on, or its `cloud.provider` label. */
export function nodeCloud(n: Pick<NodeRecord, "instance" | "labels">): string | undefined {
  return n.instance?.provider ?? n.labels["cloud.provider"];
}

export interface ResolvedBackend {
  address: string;
  nodeId: string;
  /** Name of the hosting node. */
  node: string;
  /** The workload; absent when the backend is the node itself. */
  workload?: string;
  identity: Identity;
  site: string;
  cloud?: string;
  /** Subset name ("" without subsets). */
  subset: string;
  /** Subset weight (1 without subsets). */
  weight: number;
}

interface Candidate {
  address: string;
  node: NodeRecord;
  workload?: string;
  identity: Identity;
}

function candidates(nodes: readonly NodeRecord[]): Candidate[] {
  const out: Candidate[] = [];
  for (const n of nodes) {
    if (n.identity) out.push({ address: n.overlayAddress, node: n, identity: n.identity });
    for (const w of n.workloads ?? []) out.push({ address: w.address, node: n, workload: w.name, identity: w.identity });
  }
  return out;
}

export function selects(s: BackendSelector, c: Candidate): boolean {
  if (s.sites && !s.sites.includes(c.node.site)) return false;
  if (s.nodes && !s.nodes.includes(c.node.name)) return false;
  if (s.identity !== undefined) return c.identity.spiffeId === s.identity;
  if (s.namespace !== undefined) {
    const m = SPIFFE_ID_PATTERN.exec(c.identity.spiffeId);
    return m !== null && m[3] === s.namespace && (s.serviceAccount === undefined || m[5] === s.serviceAccount);
  }
  if (s.labels !== undefined) {
    if (c.workload !== undefined) return false;
    return Object.entries(s.labels).every(([k, v]) => c.node.labels[k] === v);
  }
  return false;
}

/** The backends of `spec` among `nodes`, sorted by address. */
export function resolveBackends(spec: Service, nodes: readonly NodeRecord[]): ResolvedBackend[] {
  const groups = spec.subsets ?? [{ name: "", weight: 1, backends: spec.backends ?? [] }];
  const all = candidates(nodes);
  const byAddress = new Map<string, ResolvedBackend>();
  for (const g of groups) {
    for (const c of all) {
      if (byAddress.has(c.address) || !g.backends.some((s) => selects(s, c))) continue;
      const cloud = nodeCloud(c.node);
      byAddress.set(c.address, {
        address: c.address,
        nodeId: c.node.nodeId,
        node: c.node.name,
        ...(c.workload !== undefined ? { workload: c.workload } : {}),
        identity: c.identity,
        site: c.node.site,
        ...(cloud !== undefined ? { cloud } : {}),
        subset: g.name,
        weight: g.weight,
      });
    }
  }
  return [...byAddress.values()].sort((a, b) => compareAddresses(a.address, b.address));
}

export function compareAddresses(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < 4; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}
