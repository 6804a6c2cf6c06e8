/**
 * Name resolution for lab nodes: short names (`aws-1`, `ctl` or `ctl-1`, `inet`, `gw-aws`) or full
 * namespace names (`weft-aws-1`) to the namespace they live in. Pure.
 */
import { UnknownHostError } from "./errors.js";
import { labWorkloads, type Topology } from "./topology.js";

export type NodeKind = "host" | "controller" | "inet" | "gateway" | "workload";

export interface LabNode {
  /** Short name, e.g. `aws-1`. */
  name: string;
  kind: NodeKind;
  netns: string;
}

/** Every node of the topology: hosts, then `ctl`, `inet` and the gateways. */
export function labNodes(t: Topology): LabNode[] {
  return [
    ...t.hosts.map((h): LabNode => ({ name: h.name, kind: "host", netns: h.netns })),
    ...t.controllers.map((c): LabNode => ({ name: c.name, kind: "controller", netns: c.netns })),
    { name: t.inet.name, kind: "inet", netns: t.inet.netns },
    ...t.gateways.map((g): LabNode => ({ name: g.name, kind: "gateway", netns: g.netns })),
    ...labWorkloads(t).map((w): LabNode => ({ name: w.node, kind: "workload", netns: w.netns })),
  ];
}

/** Finds a node by short or namespace name. Throws UnknownHostError listing the valid names. */
export function resolveHost(t: Topology, name: string): LabNode {
  const nodes = labNodes(t);
  const node = nodes.find((n) => n.name === name || n.netns === name);
  if (!node) throw new UnknownHostError(name, nodes.map((n) => n.name));
  return node;
}
