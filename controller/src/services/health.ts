/**
 * What agents tell the controller about service backends, kept in memory (agents send their whole
 * state again every HEALTH_REFRESH_MS, so a restarted controller knows it again within seconds):
 *
 * - health reports (`weft.v1.node.<id>.services.health`): the verdicts of the active checks a
 *   node runs on the backends it hosts. A node speaks only for addresses it hosts (its overlay
 *   address, its workloads'); anything else in a report is dropped. A change of verdict calls
 *   `onChange` at once (the publisher recompiles the clients' tables).
 * - node liveness: a backend whose node is offline (no heartbeat for offlineAfterSeconds) takes no
 *   new connections; checked every second for the nodes that host backends.
 * - statistics reports (`weft.v1.node.<id>.services.stats`): what each client saw of each backend
 *   (active connections, connects, failures, latency, its own passive ejections) and the
 *   connections it refused; shown by `weft service get`, never used to route.
 *
 * Malformed reports, or reports on another node's subject, are dropped (logged once a minute per node).
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { HealthReport, StatsReport, Subjects, nodeIdOfNodeSubject, type BackendStats, type HealthResult } from "@weft/protocol";
import type { Logger } from "pino";
import type { LivenessStatus } from "../nodes/liveness.js";

/** Statistics older than this are left out of the views (the client stopped reporting). */
const STATS_MAX_AGE_MS = 30_000;
const LIVENESS_CHECK_MS = 1000;

export interface BackendHealthState {
  state: "healthy" | "unhealthy" | "unknown";
  reason?: string;
  since?: string;
  latencyMs?: number;
}

export interface ServiceHealthOptions {
  nc: NatsConnection;
  /** Addresses a node hosts (its own and its workloads'); undefined for an unknown node. */
  hostedBy: (nodeId: string) => ReadonlySet<string> | undefined;
  /** Node ids hosting at least one backend (whose liveness matters). */
  backendNodes: () => Iterable<string>;
  liveness: (nodeId: string) => LivenessStatus;
  onChange: () => void;
  log: Logger;
}

const healthKey = (service: string, address: string) => `${service}|${address}`;

export class ServiceHealth {
  /** Per reporting node: its check results by service|address. */
  readonly #results = new Map<string, Map<string, HealthResult>>();
  readonly #stats = new Map<string, { at: number; report: StatsReport }>();
  readonly #offline = new Set<string>();
  readonly #subs: Subscription[] = [];
  readonly #warned = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: ServiceHealthOptions) {}

  start(): void {
    this.#subs.push(this.o.nc.subscribe(Subjects.allServiceHealth, { callback: (err, msg) => (err ? this.o.log.warn({ err }, "health subscription error") : this.#health(msg.subject, msg.data)) }));
    this.#subs.push(this.o.nc.subscribe(Subjects.allServiceStats, { callback: (err, msg) => (err ? this.o.log.warn({ err }, "stats subscription error") : this.#statsReport(msg.subject, msg.data)) }));
    this.#timer = setInterval(() => this.#checkLiveness(), LIVENESS_CHECK_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    for (const s of this.#subs.splice(0)) s.unsubscribe();
  }

  /** The verdict on one backend: node liveness first, then the active check (none configured: healthy). */
  stateOf(service: string, address: string, nodeId: string, checked: boolean): BackendHealthState {
    if (this.o.liveness(nodeId) === "offline") return { state: "unhealthy", reason: "node offline (no heartbeat)" };
    if (!checked) return { state: "healthy", reason: "no health check configured" };
    const r = this.#results.get(nodeId)?.get(healthKey(service, address));
    if (!r) return { state: "unknown", reason: "no check result yet" };
    return { state: r.healthy ? "healthy" : "unhealthy", since: r.since, ...(r.reason !== undefined ? { reason: r.reason } : {}), ...(r.latencyMs !== undefined ? { latencyMs: r.latencyMs } : {}) };
  }

  /** Whether a backend takes new connections: unknown counts as healthy (its node is not known to be down). */
  healthy(service: string, address: string, nodeId: string, checked: boolean): boolean {
    return this.stateOf(service, address, nodeId, checked).state !== "unhealthy";
  }

  /** Fresh statistics reports, by reporting (client) node id. */
  stats(now = Date.now()): Map<string, StatsReport> {
    const out = new Map<string, StatsReport>();
    for (const [nodeId, s] of this.#stats) if (now - s.at <= STATS_MAX_AGE_MS) out.set(nodeId, s.report);
    return out;
  }

  /** Forget a deleted node's reports. */
  forget(nodeId: string): void {
    this.#results.delete(nodeId);
    this.#stats.delete(nodeId);
    this.#offline.delete(nodeId);
  }

  #parse<T>(subject: string, data: Uint8Array, schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: { message: string }[] } } }): { nodeId: string; report: T } | undefined {
    const nodeId = nodeIdOfNodeSubject(subject);
    if (!nodeId) return undefined;
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder().decode(data));
    } catch {
      this.#warn(nodeId, subject, "not JSON");
      return undefined;
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      this.#warn(nodeId, subject, parsed.error.issues[0]?.message ?? "invalid");
      return undefined;
    }
    return { nodeId, report: parsed.data };
  }

  #health(subject: string, data: Uint8Array): void {
    const got = this.#parse(subject, data, HealthReport);
    if (!got) return;
    const { nodeId, report } = got;
    const hosted = this.o.hostedBy(nodeId);
    if (!hosted) return this.#warn(nodeId, subject, "report from a node that is not enrolled");
    const mine = report.results.filter((r) => hosted.has(r.address));
    if (mine.length < report.results.length) this.#warn(nodeId, subject, `${report.results.length - mine.length} result(s) for addresses the node does not host`);
    const before = this.#results.get(nodeId) ?? new Map<string, HealthResult>();
    const after = report.full ? new Map<string, HealthResult>() : new Map(before);
    for (const r of mine) after.set(healthKey(r.service, r.address), r);
    this.#results.set(nodeId, after);
    const changed = [...new Set([...before.keys(), ...after.keys()])].filter((k) => before.get(k)?.healthy !== after.get(k)?.healthy);
    if (changed.length > 0) {
      this.o.log.info({ node: nodeId, changed: changed.map((k) => `${k}=${after.get(k)?.healthy === undefined ? "gone" : after.get(k)!.healthy ? "healthy" : "unhealthy"}`) }, "backend health changed");
      this.o.onChange();
    }
  }

  #statsReport(subject: string, data: Uint8Array): void {
    const got = this.#parse(subject, data, StatsReport);
    if (got) this.#stats.set(got.nodeId, { at: Date.now(), report: got.report });
  }

  #checkLiveness(): void {
    let changed = false;
    for (const nodeId of this.o.backendNodes()) {
      const offline = this.o.liveness(nodeId) === "offline";
      if (offline === this.#offline.has(nodeId)) continue;
      if (offline) this.#offline.add(nodeId);
      else this.#offline.delete(nodeId);
      this.o.log.info({ node: nodeId, offline }, offline ? "node hosting service backends went offline" : "node hosting service backends is back online");
      changed = true;
    }
    if (changed) this.o.onChange();
  }

  #warn(nodeId: string, subject: string, problem: string): void {
    const last = this.#warned.get(nodeId) ?? 0;
    if (Date.now() - last < 60_000) return;
    this.#warned.set(nodeId, Date.now());
    this.o.log.warn({ node: nodeId, subject, problem }, "dropping service report");
  }
}

/** Per backend (service|address): the clients' statistics summed, latency averaged, ejections listed. */
export interface AggregatedStats {
  activeConnections: number;
  connects: number;
  failures: number;
  latencyMs?: number;
  ejectedBy: string[];
}

export function aggregateStats(reports: ReadonlyMap<string, StatsReport>, nodeName: (nodeId: string) => string): Map<string, AggregatedStats> {
  const out = new Map<string, AggregatedStats & { latencies: number[] }>();
  for (const [nodeId, r] of reports) {
    for (const b of r.backends as BackendStats[]) {
      const k = healthKey(b.service, b.address);
      const a = out.get(k) ?? { activeConnections: 0, connects: 0, failures: 0, ejectedBy: [], latencies: [] };
      a.activeConnections += b.activeConnections;
      a.connects += b.connects;
      a.failures += b.failures;
      if (b.latencyMs !== undefined) a.latencies.push(b.latencyMs);
      if (b.ejected) a.ejectedBy.push(nodeName(nodeId));
      out.set(k, a);
    }
  }
  return new Map(
    [...out].map(([k, { latencies, ...a }]) => [k, { ...a, ejectedBy: a.ejectedBy.sort(), ...(latencies.length ? { latencyMs: latencies.reduce((x, y) => x + y, 0) / latencies.length } : {}) }]),
  );
}

export { healthKey };
