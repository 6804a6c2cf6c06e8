/**
 * Which nodes' services record a change can touch, so the services publisher compiles only those.
 *
 * A node's record (ServicesCompiler.compile) reads the node itself (local identities, site,
 * cloud), every service with its resolved backends and their health (ServicesCompiler.fingerprint),
 * and, for each backend, the verdict of the backend node's compiled policy for each of the node's
 * local identities (PolicyReach). So between two snapshots a node's record can differ only if
 *   - its own record changed, or
 *   - any service, backend or health verdict changed (then every node is compiled), or
 *   - a backend node's compiled policy changed its verdicts for one of the node's local identities
 *     (PolicyDelta says which nodes' policies may differ; PolicyReach.refresh which source
 *     identities moved; the holders of those are compiled).
 * Pure bookkeeping over the snapshot the publisher mirrors, no I/O.
 */
import type { Identity, NodeRecord, Policy, ServiceRecord } from "@weft/protocol";
import { compileInputOf, PolicyDelta } from "../policy/incremental.js";
import { ServicesCompiler, type ServicesCompileInput } from "./compile.js";
import { PolicyReach } from "./reach.js";

export interface ServicesSnapshot {
  services: Iterable<ServiceRecord>;
  nodes: ReadonlyMap<string, NodeRecord>;
  policies: Iterable<Policy>;
  identities: Iterable<Identity>;
}

export type ServicesSettings = Pick<ServicesCompileInput, "healthy" | "zone" | "serviceCidr">;

export class ServicesDelta {
  readonly #policy = new PolicyDelta();
  #reach: PolicyReach | undefined;
  #fingerprint: string | undefined;

  constructor(private readonly settings: ServicesSettings) {}

  /**
   * Takes the new snapshot (`changedNodes`: ids whose record was put or deleted since the last
   * update, or "all") and returns its compiler and the nodes whose record may differ (deleted ones
   * included).
   */
  update(snapshot: ServicesSnapshot, changedNodes: Iterable<string> | "all"): { compiler: ServicesCompiler; dirty: Set<string> } {
    const { nodes } = snapshot;
    const changed = changedNodes === "all" ? "all" : new Set(changedNodes);
    const policyDirty = this.#policy.update(compileInputOf(snapshot.policies, snapshot.identities, nodes.values()), nodes, changed);
    const first = this.#reach === undefined;
    const reach = (this.#reach ??= new PolicyReach(this.#policy.compiler));
    const moved = first ? "all" : reach.refresh(this.#policy.compiler, nodes, policyDirty);
    const compiler = new ServicesCompiler({ ...this.settings, services: [...snapshot.services], nodes: [...nodes.values()], reach });
    const fingerprint = compiler.fingerprint();
    reach.retain(nodes, new Set([...compiler.backends().values()].flatMap((list) => list.map((b) => b.nodeId))));
    const all = changed === "all" || moved === "all" || fingerprint !== this.#fingerprint;
    this.#fingerprint = fingerprint;
    if (all) return { compiler, dirty: new Set([...nodes.keys(), ...(changed === "all" ? [] : changed)]) };
    const dirty = new Set(changed);
    for (const id of moved) for (const nodeId of this.#policy.holders(id)) dirty.add(nodeId);
    return { compiler, dirty };
  }
}
