/**
 * Services on the wire: the document an admin applies (`weft service apply -f`, `PUT
 * /v1/services/<namespace>/<name>`), what the controller stores (`weft-services`), what it
 * compiles for each node (`weft-node-services/<nodeId>`), what agents report back (health of the
 * backends they host, connection statistics of the backends they call) and what `weft service
 * get` shows.
 *
 * A service is a name (`<name>.<namespace>.svc.<zone>`), a virtual IP from the service range,
 * ports, and backends: workloads and nodes chosen by identity, namespace/service account or node
 * labels (optionally only in some sites or on some nodes), in any site. Connections are balanced
 * at connect time by the agents' eBPF programs (round robin, least connections, weighted subsets
 * for canaries, EWMA of connect latency), nearest locality tier first (site, then cloud, then
 * anywhere) with failover when a tier has no healthy backend, among the backends the caller's
 * identity may reach under policy. Documented in controller/README.md ("Services").
 *
 * Parsing fails closed like policies: every object is strict, enums are closed, sizes bounded.
 */
import { z } from "zod";
import { Identity, ipv4, labels, nodeId, nodeName, siteName, spiffeId } from "./messages.js";

const port = z.number("must be a number 1-65535").int("must be 1-65535").min(1, "must be 1-65535").max(65535, "must be 1-65535");
const serviceAccount = z.string().regex(/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/, "must be a service account name: lowercase letters, digits, '.' and '-'");

export const ServiceProtocol = z
  .string("must be tcp or udp")
  .transform((s) => s.toLowerCase())
  .pipe(z.enum(["tcp", "udp"], "must be tcp or udp"));
export type ServiceProtocol = z.infer<typeof ServiceProtocol>;

/** IP protocol numbers of the service ports. */
export const ServiceProtocolNumbers = { tcp: 6, udp: 17 } as const;

export const ServicePort = z
  .object({
    /** Optional label for the port (`http`). */
    name: nodeName.optional(),
    /** The port clients connect to on the VIP. */
    port,
    protocol: ServiceProtocol.default("tcp"),
    /** The port the backends listen on; default `port`. */
    targetPort: port.optional(),
  })
  .strict();
export type ServicePort = z.infer<typeof ServicePort>;

/**
 * Which workloads and nodes serve: exactly one of `identity` (a SPIFFE ID), `namespace` (with an
 * optional `serviceAccount`) — both match node and workload identities — or `labels` (nodes
 * carrying all of them); optionally only those in `sites` or on `nodes`.
 */
export const BackendSelector = z
  .object({
    identity: spiffeId.optional(),
    namespace: nodeName.optional(),
    serviceAccount: serviceAccount.optional(),
    labels: labels.refine((l) => Object.keys(l).length > 0, "must name at least one label").optional(),
    /** Only backends in these sites. */
    sites: z.array(siteName).min(1).max(64).optional(),
    /** Only backends on these nodes (by name). */
    nodes: z.array(nodeName).min(1).max(256).optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    const kinds = (["identity", "namespace", "labels"] as const).filter((k) => s[k] !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({ code: "custom", path: [], message: `must name exactly one of identity, namespace (with serviceAccount), labels; got ${kinds.length === 0 ? "none" : kinds.join(" and ")}` });
    }
    if (s.serviceAccount !== undefined && s.namespace === undefined) ctx.addIssue({ code: "custom", path: ["serviceAccount"], message: "needs namespace" });
  });
export type BackendSelector = z.infer<typeof BackendSelector>;

/** Backends that share one weight, e.g. `stable` 90 and `canary` 10 (algorithm `weighted`). */
export const ServiceSubset = z
  .object({
    name: nodeName,
    /** Relative weight of the subset; its backends share it equally. */
    weight: z.number("must be a number 0-10000").int("must be a whole number").min(0, "must be 0-10000").max(10000, "must be 0-10000"),
    backends: z.array(BackendSelector).min(1, "needs at least one selector").max(32),
  })
  .strict();
export type ServiceSubset = z.infer<typeof ServiceSubset>;

export const ServiceAlgorithm = z.enum(["round-robin", "least-connections", "weighted", "ewma-latency"], "must be one of round-robin, least-connections, weighted, ewma-latency");
export type ServiceAlgorithm = z.infer<typeof ServiceAlgorithm>;

/**
 * The nearest tier a client prefers: `site` (same site, then same cloud, then any), `cloud` (same
 * cloud, then any) or `any` (no preference). A tier with no healthy backend fails over to the next.
 */
export const ServiceLocality = z.enum(["site", "cloud", "any"], "must be one of site, cloud, any");
export type ServiceLocality = z.infer<typeof ServiceLocality>;

export const HealthCheck = z
  .object({
    protocol: z.enum(["tcp", "http"], "must be tcp or http"),
    /** Port checked on each backend; default the first port's targetPort. */
    port: port.optional(),
    /** HTTP only: the path asked for (GET); healthy on a 2xx or 3xx answer. Default "/". */
    path: z
      .string()
      .max(256)
      .regex(/^\/[\x21-\x7e]*$/, "must be an absolute path of printable characters without spaces")
      .optional(),
    intervalMs: z.number().int().min(100, "at least 100 ms").max(60_000, "at most 60000 ms").default(1000),
    /** Each check's limit; default the interval (at most 1 s). */
    timeoutMs: z.number().int().min(50, "at least 50 ms").max(60_000, "at most 60000 ms").optional(),
    /** Consecutive successes that make an unhealthy backend healthy again. */
    healthyThreshold: z.number().int().min(1).max(10).default(2),
    /** Consecutive failures that make a healthy backend unhealthy. */
    unhealthyThreshold: z.number().int().min(1).max(10).default(2),
  })
  .strict()
  .superRefine((h, ctx) => {
    if (h.path !== undefined && h.protocol !== "http") ctx.addIssue({ code: "custom", path: ["path"], message: "only an http check has a path" });
    if (h.timeoutMs !== undefined && h.timeoutMs > h.intervalMs) ctx.addIssue({ code: "custom", path: ["timeoutMs"], message: `must not exceed intervalMs (${h.intervalMs})` });
  });
export type HealthCheck = z.infer<typeof HealthCheck>;

/** New connections per second each source identity may open to the service, per client node (token bucket). */
export const RateLimit = z
  .object({
    connectionsPerSecond: z.number().int().min(1).max(1_000_000),
    /** Connections allowed at once after a quiet period; default connectionsPerSecond. */
    burst: z.number().int().min(1).max(1_000_000).optional(),
  })
  .strict();
export type RateLimit = z.infer<typeof RateLimit>;

export const Service = z
  .object({
    version: z.literal(1).default(1),
    name: nodeName,
    namespace: nodeName,
    description: z.string().max(200).optional(),
    ports: z.array(ServicePort).min(1, "needs at least one port").max(16),
    algorithm: ServiceAlgorithm.default("round-robin"),
    /** The backends, all alike (every algorithm but weighted). */
    backends: z.array(BackendSelector).min(1, "needs at least one selector").max(32).optional(),
    /** Weighted groups of backends (algorithm weighted). */
    subsets: z.array(ServiceSubset).min(1).max(16).optional(),
    locality: ServiceLocality.default("site"),
    healthCheck: HealthCheck.optional(),
    rateLimit: RateLimit.optional(),
    /** Ask for this virtual IP (inside the service range, not taken); default the lowest free one. */
    vip: ipv4.optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if ((s.backends === undefined) === (s.subsets === undefined)) {
      ctx.addIssue({ code: "custom", path: ["backends"], message: "give exactly one of backends (all alike) or subsets (weighted groups)" });
    }
    if (s.algorithm === "weighted" && s.subsets === undefined) ctx.addIssue({ code: "custom", path: ["subsets"], message: "algorithm weighted needs subsets with weights" });
    if (s.algorithm !== "weighted" && s.subsets !== undefined) ctx.addIssue({ code: "custom", path: ["subsets"], message: `subsets carry weights: use algorithm weighted, or list backends for ${s.algorithm}` });
    if (s.subsets !== undefined && s.subsets.every((x) => x.weight === 0)) ctx.addIssue({ code: "custom", path: ["subsets"], message: "at least one subset needs a weight above 0" });
    const seenSubsets = new Map<string, number>();
    s.subsets?.forEach((x, i) => {
      const first = seenSubsets.get(x.name);
      if (first !== undefined) ctx.addIssue({ code: "custom", path: ["subsets", i, "name"], message: `duplicate subset ${x.name} (also subsets[${first}].name)` });
      else seenSubsets.set(x.name, i);
    });
    const seenPorts = new Map<string, number>();
    s.ports.forEach((p, i) => {
      const key = `${p.protocol}/${p.port}`;
      const first = seenPorts.get(key);
      if (first !== undefined) ctx.addIssue({ code: "custom", path: ["ports", i, "port"], message: `duplicate port ${key} (also ports[${first}])` });
      else seenPorts.set(key, i);
    });
  });
export type Service = z.infer<typeof Service>;
export type ServiceInput = z.input<typeof Service>;

/** `<namespace>.<name>`: the KV key of a service (both parts are DNS labels, so never ambiguous). */
export function serviceKey(s: { namespace: string; name: string }): string {
  return `${s.namespace}.${s.name}`;
}

/** `<namespace>/<name>`, how services are named to people and in reports. */
export function serviceRef(s: { namespace: string; name: string }): string {
  return `${s.namespace}/${s.name}`;
}

/** The DNS name agents answer for a service: `<name>.<namespace>.svc.<zone>`. */
export function serviceDnsName(s: { namespace: string; name: string }, zone: string): string {
  return `${s.name}.${s.namespace}.svc.${zone}`;
}

/** The port backends listen on for a service port. */
export function targetPortOf(p: Pick<ServicePort, "port" | "targetPort">): number {
  return p.targetPort ?? p.port;
}

/** KV `weft-services`, key `<namespace>.<name>`: the document and its allocated VIP. Controller only. */
export const ServiceRecord = z.object({
  version: z.literal(1),
  spec: Service,
  vip: ipv4,
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type ServiceRecord = z.infer<typeof ServiceRecord>;

// ---------------------------------------------------------------- per node (KV weft-node-services)

/** A backend as a client node sees it. */
export const NodeServiceBackend = z.object({
  address: ipv4,
  /** Name of the node that hosts it. */
  node: nodeName,
  /** The workload it is, on that node; absent for the node itself. */
  workload: nodeName.optional(),
  identity: z.number().int().min(0).max(0xffffffff),
  site: siteName,
  /** The node's cloud provider (aws, azure, gcp, …), when known. */
  cloud: z.string().max(32).optional(),
  /** Subset name (weighted), "" otherwise. */
  subset: z.string().max(63),
  /** The subset's weight (weighted); 1 otherwise. */
  weight: z.number().int().min(0).max(10000),
  /** The controller's view: active checks and node liveness. */
  healthy: z.boolean(),
});
export type NodeServiceBackend = z.infer<typeof NodeServiceBackend>;

/**
 * One service as one node compiles it: its ports and backends, and for each local identity the
 * backends policy lets it reach on each port (`access[srcId][portIndex]` = backend indices).
 * An identity with no reachable backend on any port is left out; a service none of the node's
 * identities can reach is not in the record at all.
 */
export const NodeService = z.object({
  name: nodeName,
  namespace: nodeName,
  vip: ipv4,
  algorithm: ServiceAlgorithm,
  locality: ServiceLocality,
  ports: z.array(z.object({ port, protocol: z.enum(["tcp", "udp"]), targetPort: port })).min(1).max(16),
  rateLimit: RateLimit.optional(),
  backends: z.array(NodeServiceBackend).max(4096),
  access: z.record(z.string().regex(/^\d+$/), z.array(z.array(z.number().int().min(0)))),
});
export type NodeService = z.infer<typeof NodeService>;

/** A health check a node runs on a backend it hosts. */
export const HealthCheckTask = z.object({
  /** `<namespace>/<name>`. */
  service: z.string().max(127),
  address: ipv4,
  /** The workload checked (from inside its network namespace); absent: the node itself. */
  workload: nodeName.optional(),
  port,
  protocol: z.enum(["tcp", "http"]),
  path: z.string().max(256).optional(),
  intervalMs: z.number().int().min(100),
  timeoutMs: z.number().int().min(50),
  healthyThreshold: z.number().int().min(1),
  unhealthyThreshold: z.number().int().min(1),
});
export type HealthCheckTask = z.infer<typeof HealthCheckTask>;

/**
 * KV `weft-node-services`, key = node id: the services this node's identities may call (for its
 * datapath and its DNS), and the health checks it runs for the backends it hosts. An agent may
 * read only its own key.
 */
export const NodeServicesRecord = z.object({
  version: z.literal(1),
  nodeId,
  /** DNS zone of service names (`<name>.<namespace>.svc.<zone>`), node and workload names. */
  zone: z.string().max(253),
  /** The service range: agents route it nowhere (unreachable) so a stray VIP packet never leaves. */
  serviceCidr: z.string().max(18),
  /** This node's own site and cloud (locality tiers are measured from here). */
  self: z.object({ site: siteName, cloud: z.string().max(32).optional() }),
  services: z.array(NodeService),
  checks: z.array(HealthCheckTask),
  compiledAt: z.string(),
});
export type NodeServicesRecord = z.infer<typeof NodeServicesRecord>;

// ---------------------------------------------------------------- agent reports (NATS)

/** One active check's verdict on a backend. */
export const HealthResult = z
  .object({
    service: z.string().max(127),
    address: ipv4,
    port,
    healthy: z.boolean(),
    /** When the backend entered this state (ISO time). */
    since: z.string().max(40),
    /** Duration of the last successful check. */
    latencyMs: z.number().min(0).max(600_000).optional(),
    /** Why the last check failed. */
    reason: z.string().max(200).optional(),
  })
  .strict();
export type HealthResult = z.infer<typeof HealthResult>;

/**
 * Agent → controller on Subjects.serviceHealth(nodeId): the verdicts of the checks the node runs,
 * on every change and in full every HEALTH_REFRESH_MS. `full: true` replaces everything the node
 * reported before (checks it no longer runs are dropped).
 */
export const HealthReport = z
  .object({
    version: z.literal(1),
    full: z.boolean(),
    sentAt: z.string().max(40),
    results: z.array(HealthResult).max(4096),
  })
  .strict();
export type HealthReport = z.infer<typeof HealthReport>;

/** How often an agent sends its whole health state even when nothing changed. */
export const HEALTH_REFRESH_MS = 5000;

/** What one client node saw of one backend of a service. */
export const BackendStats = z
  .object({
    service: z.string().max(127),
    address: ipv4,
    port,
    activeConnections: z.number().int().min(-1_000_000_000).max(1_000_000_000),
    connects: z.number().int().min(0),
    failures: z.number().int().min(0),
    /** EWMA of connect latency measured at this client. */
    latencyMs: z.number().min(0).max(600_000).optional(),
    /** Ejected at this client for consecutive connection failures (passive health). */
    ejected: z.boolean(),
  })
  .strict();
export type BackendStats = z.infer<typeof BackendStats>;

/** Agent → controller on Subjects.serviceStats(nodeId), every few seconds while anything changes. */
export const StatsReport = z
  .object({
    version: z.literal(1),
    sentAt: z.string().max(40),
    backends: z.array(BackendStats).max(16384),
    /** Refused new connections per service and source identity. */
    drops: z
      .array(z.object({ service: z.string().max(127), sourceId: z.number().int().min(0), rateLimited: z.number().int().min(0), noBackend: z.number().int().min(0) }).strict())
      .max(16384),
  })
  .strict();
export type StatsReport = z.infer<typeof StatsReport>;

// ---------------------------------------------------------------- REST views

export const BackendView = z.object({
  address: ipv4,
  port,
  node: nodeName,
  nodeId,
  workload: nodeName.optional(),
  identity: Identity,
  site: siteName,
  cloud: z.string().optional(),
  subset: z.string(),
  /** Subset weight (weighted), 1 otherwise. */
  weight: z.number(),
  /** Share of new connections a client with no locality preference would send it, in percent. */
  sharePercent: z.number(),
  health: z.enum(["healthy", "unhealthy", "unknown"]),
  /** Why: the last check's failure, the node offline, no check configured. */
  healthReason: z.string().optional(),
  healthSince: z.string().optional(),
  /** Clients' numbers, summed over the nodes that reported them. */
  activeConnections: z.number(),
  connects: z.number(),
  failures: z.number(),
  /** Mean of the clients' connect-latency EWMAs. */
  latencyMs: z.number().optional(),
  /** Client nodes that ejected it for connection failures. */
  ejectedBy: z.array(nodeName),
});
export type BackendView = z.infer<typeof BackendView>;

export const ServiceView = z.object({
  service: Service,
  vip: ipv4,
  dnsName: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  backends: z.array(BackendView),
  /** Refused new connections (all clients), by reason. */
  refused: z.object({ rateLimited: z.number(), noBackend: z.number() }),
});
export type ServiceView = z.infer<typeof ServiceView>;
