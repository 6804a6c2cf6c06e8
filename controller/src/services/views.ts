/**
 * What `weft service get` shows (GET /v1/services/<namespace>/<name>): the service, its VIP and
 * DNS name, and each backend with its locality, weight, share, health and what the clients
 * reported of it. Pure: the caller passes the snapshot, the health verdicts and the statistics.
 */
import { serviceDnsName, serviceRef, targetPortOf, type BackendView, type ServiceRecord, type ServiceView, type StatsReport } from "@weft/protocol";
import type { AggregatedStats, BackendHealthState } from "./health.js";
import { healthKey } from "./health.js";
import type { ResolvedBackend } from "./resolve.js";

export interface ViewInput {
  record: ServiceRecord;
  backends: readonly ResolvedBackend[];
  zone: string;
  health: (backend: ResolvedBackend) => BackendHealthState;
  stats: ReadonlyMap<string, AggregatedStats>;
  reports: ReadonlyMap<string, StatsReport>;
}

/**
 * Shares as a client with no locality preference sees them: healthy backends only; weighted:
 * each subset's weight split equally among its healthy backends; otherwise equal.
 */
export function shares(backends: readonly ResolvedBackend[], healthy: readonly boolean[], weighted: boolean): number[] {
  const live = backends.map((_, i) => healthy[i] === true);
  if (!weighted) {
    const n = live.filter(Boolean).length;
    return live.map((ok) => (ok && n > 0 ? 100 / n : 0));
  }
  const perSubset = new Map<string, number>();
  backends.forEach((b, i) => live[i] && perSubset.set(b.subset, (perSubset.get(b.subset) ?? 0) + 1));
  const total = [...perSubset.keys()].reduce((sum, s) => sum + (backends.find((b) => b.subset === s)?.weight ?? 0), 0);
  return backends.map((b, i) => (live[i] && total > 0 ? (b.weight / total / (perSubset.get(b.subset) ?? 1)) * 100 : 0));
}

export function serviceView(input: ViewInput): ServiceView {
  const { record, backends } = input;
  const ref = serviceRef(record.spec);
  const states = backends.map((b) => input.health(b));
  const share = shares(
    backends,
    states.map((s) => s.state !== "unhealthy"),
    record.spec.algorithm === "weighted",
  );
  const port = targetPortOf(record.spec.ports[0]!);
  const views: BackendView[] = backends.map((b, i) => {
    const h = states[i]!;
    const s = input.stats.get(healthKey(ref, b.address));
    return {
      address: b.address,
      port,
      node: b.node,
      nodeId: b.nodeId,
      ...(b.workload !== undefined ? { workload: b.workload } : {}),
      identity: b.identity,
      site: b.site,
      ...(b.cloud !== undefined ? { cloud: b.cloud } : {}),
      subset: b.subset,
      weight: b.weight,
      sharePercent: Math.round((share[i] ?? 0) * 10) / 10,
      health: h.state,
      ...(h.reason !== undefined ? { healthReason: h.reason } : {}),
      ...(h.since !== undefined ? { healthSince: h.since } : {}),
      activeConnections: s?.activeConnections ?? 0,
      connects: s?.connects ?? 0,
      failures: s?.failures ?? 0,
      ...(s?.latencyMs !== undefined ? { latencyMs: Math.round(s.latencyMs * 1000) / 1000 } : {}),
      ejectedBy: s?.ejectedBy ?? [],
    };
  });
  const refused = { rateLimited: 0, noBackend: 0 };
  for (const r of input.reports.values()) {
    for (const d of r.drops) {
      if (d.service !== ref) continue;
      refused.rateLimited += d.rateLimited;
      refused.noBackend += d.noBackend;
    }
  }
  return { service: record.spec, vip: record.vip, dnsName: serviceDnsName(record.spec, input.zone), createdAt: record.createdAt, updatedAt: record.updatedAt, backends: views, refused };
}
