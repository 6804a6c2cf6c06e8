/**
 * The services compiler: pure functions from (services, node records, policy, backend health)
 * to what ONE node gets in `weft-node-services/<nodeId>`:
 *
 * - `services`: every service at least one of the node's local identities (its own, its
 *   workloads') may reach on some port. For each such identity and port, the indices of the
 *   backends policy lets it reach there (PolicyReach: the backend node's compiled policy read as
 *   the datapath reads it). A backend no local identity may reach is still listed (the agent needs
 *   stable indices) but appears in no access list. Health travels with each backend; the agent
 *   applies locality, weights and its own passive ejections on top.
 * - `checks`: the health checks of the service backends the node itself hosts.
 *
 * Backends are resolved once per snapshot (resolve.ts); each node costs its identities × services
 * × backends × ports policy lookups.
 */
import { ServiceProtocolNumbers, serviceRef, targetPortOf, type HealthCheckTask, type NodeRecord, type NodeService, type NodeServicesRecord, type ServiceRecord } from "@weft/protocol";
import { localIdentitiesOf } from "../policy/compile.js";
import type { PolicyReach } from "./reach.js";
import { nodeCloud, resolveBackends, type ResolvedBackend } from "./resolve.js";

export interface ServicesCompileInput {
  services: readonly ServiceRecord[];
  nodes: readonly NodeRecord[];
  reach: Pick<PolicyReach, "allows">;
  /** Whether a backend takes new connections (active checks, node liveness). */
  healthy: (service: string, backend: ResolvedBackend, checked: boolean) => boolean;
  zone: string;
  serviceCidr: string;
}

interface Prepared {
  record: ServiceRecord;
  ref: string;
  backends: ResolvedBackend[];
  healthy: boolean[];
}

export type CompiledNodeServices = Omit<NodeServicesRecord, "compiledAt">;

export class ServicesCompiler {
  readonly #prepared: Prepared[];
  readonly #nodes: Map<string, NodeRecord>;

  constructor(private readonly input: ServicesCompileInput) {
    this.#nodes = new Map(input.nodes.map((n) => [n.nodeId, n]));
    this.#prepared = [...input.services]
      .sort((a, b) => serviceRef(a.spec).localeCompare(serviceRef(b.spec)))
      .map((record) => {
        const ref = serviceRef(record.spec);
        const backends = resolveBackends(record.spec, input.nodes);
        return { record, ref, backends, healthy: backends.map((b) => input.healthy(ref, b, record.spec.healthCheck !== undefined)) };
      });
  }

  /** The backends of every service in this snapshot, by `namespace/name`. */
  backends(): Map<string, ResolvedBackend[]> {
    return new Map(this.#prepared.map((p) => [p.ref, p.backends]));
  }

  /**
   * Everything of this snapshot every node's compilation reads besides the node itself and the
   * backend nodes' policies: each service's record, resolved backends and their health, as one
   * string (equal strings: no node's services differ because of them).
   */
  fingerprint(): string {
    return JSON.stringify(this.#prepared.map((p) => [p.record, p.backends, p.healthy]));
  }

  compile(node: NodeRecord): CompiledNodeServices {
    const local = localIdentitiesOf({ identity: node.identity, workloads: node.workloads });
    const services: NodeService[] = [];
    for (const p of this.#prepared) {
      const { spec } = p.record;
      const ports = spec.ports.map((x) => ({ port: x.port, protocol: x.protocol, targetPort: targetPortOf(x) }));
      const access: Record<string, number[][]> = {};
      for (const src of local) {
        const perPort = ports.map((port) =>
          p.backends.flatMap((b, i) => {
            const host = this.#nodes.get(b.nodeId);
            if (!host) return [];
            return this.input.reach.allows(b.nodeId, { identity: host.identity, workloads: host.workloads }, src, b.identity.id, ServiceProtocolNumbers[port.protocol], port.targetPort) ? [i] : [];
          }),
        );
        if (perPort.some((l) => l.length > 0)) access[String(src)] = perPort;
      }
      if (Object.keys(access).length === 0) continue;
      services.push({
        name: spec.name,
        namespace: spec.namespace,
        vip: p.record.vip,
        algorithm: spec.algorithm,
        locality: spec.locality,
        ports,
        ...(spec.rateLimit ? { rateLimit: spec.rateLimit } : {}),
        backends: p.backends.map((b, i) => ({
          address: b.address,
          node: b.node,
          ...(b.workload !== undefined ? { workload: b.workload } : {}),
          identity: b.identity.id,
          site: b.site,
          ...(b.cloud !== undefined ? { cloud: b.cloud } : {}),
          subset: b.subset,
          weight: b.weight,
          healthy: p.healthy[i] ?? true,
        })),
        access,
      });
    }
    const cloud = nodeCloud(node);
    return {
      version: 1,
      nodeId: node.nodeId,
      zone: this.input.zone,
      serviceCidr: this.input.serviceCidr,
      self: { site: node.site, ...(cloud !== undefined ? { cloud } : {}) },
      services,
      checks: this.#checks(node),
    };
  }

  /** Health checks of the backends `node` hosts. */
  #checks(node: NodeRecord): HealthCheckTask[] {
    const out: HealthCheckTask[] = [];
    for (const p of this.#prepared) {
      const hc = p.record.spec.healthCheck;
      if (!hc) continue;
      const port = hc.port ?? targetPortOf(p.record.spec.ports[0]!);
      for (const b of p.backends) {
        if (b.nodeId !== node.nodeId) continue;
        out.push({
          service: p.ref,
          address: b.address,
          ...(b.workload !== undefined ? { workload: b.workload } : {}),
          port,
          protocol: hc.protocol,
          ...(hc.protocol === "http" ? { path: hc.path ?? "/" } : {}),
          intervalMs: hc.intervalMs,
          timeoutMs: hc.timeoutMs ?? Math.min(hc.intervalMs, 1000),
          healthyThreshold: hc.healthyThreshold,
          unhealthyThreshold: hc.unhealthyThreshold,
        });
      }
    }
    return out;
  }
}
