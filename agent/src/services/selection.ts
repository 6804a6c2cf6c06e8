/**
 * What one source identity's connections to one service port may choose from, decided in pure
 * functions and written to the datapath as one weft_lb_services entry (the BPF program only
 * draws from it; see bpf/progs/lib/lb.h):
 *
 * 1. Candidates: the backends the controller lets this identity reach on this port (policy),
 *    that are healthy (active checks, node liveness) and not ejected by this node's own passive
 *    outlier detection. Ejections never empty the set: when every candidate is ejected they are
 *    ignored (a guess at a working backend beats refusing every connection).
 * 2. Locality: tiers from the service's `locality` — site: same site, then same cloud, then any;
 *    cloud: same cloud, then any; any: everything. The nearest tier with a candidate wins, so a
 *    tier with no healthy backend fails over to the next. For `weighted`, each subset picks its
 *    nearest tier on its own, so a canary's share survives locality.
 * 3. At most LB_MAX_BACKENDS of them (a stable per-node subset when there are more).
 * 4. The table: round robin and least connections list each backend once (the program cycles or
 *    compares active connections); weighted and ewma-latency fill TABLE_SLOTS slots in
 *    proportion to the weights (largest remainder, at least one slot each), and the program
 *    draws a slot at random. Weighted: a subset's weight is split equally among its chosen
 *    backends. EWMA: weight ∝ 1 / latency (a backend with no sample yet gets the median of the
 *    others), each at least about MIN_EWMA_SHARE of the total so slow backends keep being measured.
 *
 * No candidate at all: an empty table, so connects are refused (ECONNREFUSED, counted noBackend).
 */
import { createHash } from "node:crypto";
import { LB_MAX_BACKENDS, type LbAlgorithmName, type LbService } from "@weft/bpf";
import type { NodeService, NodeServiceBackend, ServiceAlgorithm } from "@weft/protocol";

/** Slots filled for weighted tables (room for the at-least-one slot of up to 64 backends in 1024). */
export const TABLE_SLOTS = 960;
/** The smallest share a backend gets under ewma-latency, so its latency keeps being sampled. */
export const MIN_EWMA_SHARE = 0.02;

export const ALGORITHMS: Record<ServiceAlgorithm, LbAlgorithmName> = {
  "round-robin": "roundRobin",
  "least-connections": "leastConnections",
  weighted: "weighted",
  "ewma-latency": "ewma",
};

export interface Self {
  site: string;
  cloud?: string | undefined;
  /** Node id: the stable subset when a tier has more than LB_MAX_BACKENDS backends. */
  nodeId: string;
}

export interface LocalView {
  /** Backend addresses this node ejected for connection failures (passive health). */
  ejected: ReadonlySet<string>;
  /** EWMA connect latency per backend address, in ms (ewma-latency). */
  latencyMs: ReadonlyMap<string, number>;
}

export const NO_LOCAL_VIEW: LocalView = { ejected: new Set(), latencyMs: new Map() };

type Tier = (b: NodeServiceBackend) => boolean;

/** The locality tiers of a service, nearest first. */
export function tiers(locality: NodeService["locality"], self: Pick<Self, "site" | "cloud">): Tier[] {
  const site: Tier = (b) => b.site === self.site;
  const cloud: Tier = (b) => self.cloud !== undefined && b.cloud === self.cloud;
  const any: Tier = () => true;
  if (locality === "site") return [site, cloud, any];
  if (locality === "cloud") return [cloud, any];
  return [any];
}

/** Candidates after health and this node's ejections (ignored when they would leave none). */
export function candidates(service: NodeService, allowed: readonly number[], local: LocalView): number[] {
  const healthy = allowed.filter((i) => service.backends[i]?.healthy === true);
  const kept = healthy.filter((i) => !local.ejected.has(service.backends[i]!.address));
  return kept.length > 0 ? kept : healthy;
}

/** The nearest tier with a candidate (per subset for weighted). */
export function localityPick(service: NodeService, cands: readonly number[], self: Pick<Self, "site" | "cloud">): number[] {
  const order = tiers(service.locality, self);
  const pick = (group: readonly number[]) => {
    for (const tier of order) {
      const inTier = group.filter((i) => tier(service.backends[i]!));
      if (inTier.length > 0) return inTier;
    }
    return [];
  };
  if (service.algorithm !== "weighted") return pick(cands);
  const bySubset = new Map<string, number[]>();
  for (const i of cands) {
    const s = service.backends[i]!.subset;
    bySubset.set(s, [...(bySubset.get(s) ?? []), i]);
  }
  return [...bySubset.values()].flatMap(pick).sort((a, b) => a - b);
}

/** At most `max` backends: all of them, or a stable subset for this node (rendezvous hashing). */
export function capBackends(service: NodeService, chosen: readonly number[], self: Pick<Self, "nodeId">, max = LB_MAX_BACKENDS): number[] {
  if (chosen.length <= max) return [...chosen];
  const score = (i: number) => createHash("sha256").update(`${self.nodeId}/${service.backends[i]!.address}`).digest().readUInt32BE(0);
  return [...chosen]
    .sort((a, b) => score(b) - score(a))
    .slice(0, max)
    .sort((a, b) => a - b);
}

/** Integer slots in proportion to `weights` (each > 0 gets at least one), summing to about `total`. */
export function apportion(weights: readonly number[], total = TABLE_SLOTS): number[] {
  const sum = weights.reduce((a, b) => a + Math.max(0, b), 0);
  if (sum <= 0) return weights.map(() => 0);
  const exact = weights.map((w) => (Math.max(0, w) / sum) * total);
  const slots = exact.map((x, i) => ((weights[i] ?? 0) > 0 ? Math.max(1, Math.floor(x)) : 0));
  let left = total - slots.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => [x - Math.floor(x), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let k = 0; left > 0 && k < order.length; k++) {
    const i = order[k]![1];
    if ((weights[i] ?? 0) > 0) {
      slots[i] = (slots[i] ?? 0) + 1;
      left--;
    }
  }
  return slots;
}

/** Per-backend weights for weighted (subset weight split among the subset's chosen backends) and ewma-latency. */
export function weightsOf(service: NodeService, chosen: readonly number[], local: LocalView): number[] {
  if (service.algorithm === "weighted") {
    const perSubset = new Map<string, number>();
    for (const i of chosen) perSubset.set(service.backends[i]!.subset, (perSubset.get(service.backends[i]!.subset) ?? 0) + 1);
    return chosen.map((i) => service.backends[i]!.weight / (perSubset.get(service.backends[i]!.subset) ?? 1));
  }
  // ewma-latency: 1 / latency, unknown = median of the known ones, floored at 0.05 ms.
  const known = chosen.map((i) => local.latencyMs.get(service.backends[i]!.address)).filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  const median = known.length > 0 ? known[Math.floor(known.length / 2)]! : 1;
  const raw = chosen.map((i) => 1 / Math.max(0.05, local.latencyMs.get(service.backends[i]!.address) ?? median));
  const total = raw.reduce((a, b) => a + b, 0);
  return raw.map((w) => Math.max(w, MIN_EWMA_SHARE * total));
}

/** The weft_lb_services value for one source identity and one port of `service`. */
export function selectionFor(service: NodeService, srcId: number, portIndex: number, self: Self, local: LocalView = NO_LOCAL_VIEW): LbService {
  const allowed = service.access[String(srcId)]?.[portIndex] ?? [];
  const chosen = capBackends(service, localityPick(service, candidates(service, allowed, local), self), self);
  const port = service.ports[portIndex]!;
  const backends = chosen.map((i) => ({ addr: service.backends[i]!.address, port: port.targetPort }));
  const algo = ALGORITHMS[service.algorithm];
  let table: number[];
  if (service.algorithm === "weighted" || service.algorithm === "ewma-latency") {
    const slots = apportion(weightsOf(service, chosen, local));
    table = slots.flatMap((n, i) => Array.from({ length: n }, () => i));
  } else {
    table = backends.map((_, i) => i);
  }
  const rate = service.rateLimit?.connectionsPerSecond ?? 0;
  return { algo, rate, burst: rate === 0 ? 0 : (service.rateLimit?.burst ?? rate), backends, table };
}
