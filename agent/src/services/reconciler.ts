/**
 * Services on this node, the one owner of `state.appliedServices` and of the service maps:
 *
 * - the node's compiled services (`weft-node-services/<nodeId>`, its own key: OwnKeyWatch) turned
 *   into map entries (desired.ts, selection.ts) — from the cache at start, before the socket
 *   programs are attached (fail static), then each newer revision, the latest winning; the
 *   programs are loaded with the first record that has a service (LazyServiceDatapath);
 * - the identities of the host's and the workloads' network namespaces (weft_lb_sources);
 * - every OBSERVE_MS the datapath's counters: passive ejections and latency EWMAs (observer.ts)
 *   (not while the node has no services, once what was counted is reported and pruned),
 *   which rebuild the entries of the services they touch; stale counters pruned;
 * - the health checks of the backends hosted here (health.ts), each verdict published at once on
 *   `weft.v1.node.<id>.services.health` and the whole state every HEALTH_REFRESH_MS; what this
 *   node saw of each backend on `…services.stats` every STATS_REPORT_MS;
 * - DNS (dns.ts) for the host and its workloads, with each workload's resolv.conf, and an
 *   unreachable route for the service range so a VIP packet no program rewrote never leaves.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { Buckets, HEALTH_REFRESH_MS, NodeServicesRecord, Subjects, serviceRef, type HealthReport, type HealthResult, type Logger, type NodeService, type PeerRecord, type StatsReport } from "@weft/protocol";
import { AbortedError, LatestWins, retry } from "@weft/util";
import type { LbStatsValue } from "@weft/bpf";
import { OwnKeyWatch } from "../control/key-watch.js";
import { identityNames, nameOf } from "../datapath/names.js";
import type { CommandRunner } from "../exec/runner.js";
import type { StateHolder } from "../state/holder.js";
import type { StatusReporter } from "../status/reporter.js";
import type { LazyServiceDatapath, ServiceDatapath } from "./datapath.js";
import { desiredServices, serviceByVip } from "./desired.js";
import type { DnsServer } from "./dns.js";
import { HealthChecker } from "./health.js";
import { dnsNames, workloadResolvConf } from "./names.js";
import type { ServiceMetricRow } from "./metrics.js";
import { BackendObserver, type ObserverOptions } from "./observer.js";
import { writeResolvConf } from "./resolv.js";
import type { LocalView } from "./selection.js";

/** How often the datapath's counters are read (passive ejection reacts within this). */
export const OBSERVE_MS = 200;
const STATS_REPORT_MS = 2000;
/** How often network namespace cookies and DNS names are refreshed even without a change. */
const REFRESH_MS = 5000;
/** Routes the agent installs carry this protocol number (like the overlay's). */
const ROUTE_PROTO = "87";

export interface AppliedServices {
  /** -1: nothing applied yet; 0: the node has no key. */
  revision: number;
  record: NodeServicesRecord | null;
}

export interface ConfiguredWorkloadNetns {
  name: string;
  namespace: string;
  netns: string;
}

export interface ServiceReconcilerOptions {
  nodeId: string;
  /**
   * The socket programs, loaded when the first record with a service is applied (from the cache
   * or NATS) and attached once their maps are filled. Undefined: no eBPF datapath here; the record
   * is still followed (DNS, health checks).
   */
  datapath: LazyServiceDatapath | undefined;
  dns: DnsServer | undefined;
  /** The address workloads' resolv.conf names (the DNS listen address); undefined: none written. */
  nameserver: string | undefined;
  workloads: readonly ConfiguredWorkloadNetns[];
  observer?: ObserverOptions;
  /** Zone used before the first record (the trust domain's default). */
  defaultZone: string;
  run: CommandRunner;
  state: StateHolder;
  status: StatusReporter;
  log: Logger;
}

export class ServiceReconciler {
  #applied: AppliedServices;
  readonly #queue: LatestWins<AppliedServices>;
  readonly #observer: BackendObserver;
  readonly #health: HealthChecker;
  #watch: OwnKeyWatch<typeof NodeServicesRecord> | undefined;
  #nc: NatsConnection | undefined;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #stop = new AbortController();
  #routedCidr: string | undefined;
  #lastStats = "";
  #lastStatsAt = 0;
  /** The DNS names last computed, and from what. */
  #names: { record: NodeServicesRecord | null; peers: readonly PeerRecord[]; zone: string; names: ReturnType<typeof dnsNames> } | undefined;
  /** No services, and the counters were reported and pruned once since: nothing to read until some come. */
  #drained = false;
  #lastStatsSent = new Date(0).toISOString();
  constructor(private readonly o: ServiceReconcilerOptions) {
    this.#applied = o.state.current.appliedServices ?? { revision: -1, record: null };
    this.#observer = new BackendObserver(o.observer);
    this.#queue = new LatestWins<AppliedServices>(
      (next) => this.#apply(next),
      (err) => o.log.error({ err }, "applying the node's services failed; keeping the last applied entries, will retry on the next change"),
    );
    const netns = new Map(o.workloads.map((w) => [w.name, `/run/netns/${w.netns}`]));
    this.#health = new HealthChecker({ netnsOf: (w) => netns.get(w), onChange: (results) => this.#publishHealth(results, false), log: o.log });
  }

  get applied(): AppliedServices {
    return this.#applied;
  }

  /** Fail static: the cached services into the maps (before the programs are attached), names and checks. */
  async restore(): Promise<void> {
    await this.#converge(this.#applied.record, "cache").catch((err: unknown) => this.o.log.error({ err }, "cannot restore the cached services"));
  }

  /** After connecting: follow this node's key, and start the counters and report loops. */
  start(nc: NatsConnection): void {
    this.#nc = nc;
    this.#watch = new OwnKeyWatch(nc, {
      bucket: Buckets.nodeServices,
      key: this.o.nodeId,
      schema: NodeServicesRecord,
      accept: (r) => (r.nodeId === this.o.nodeId ? undefined : `record names node ${r.nodeId}`),
      onRecord: (record, revision) => this.#queue.submit({ record, revision }),
      log: this.o.log,
    });
    void this.resync();
    this.#timers.push(setInterval(() => this.#observe(), OBSERVE_MS));
    this.#timers.push(setInterval(() => this.#publishHealth(this.#health.snapshot(), true), HEALTH_REFRESH_MS));
    this.#timers.push(setInterval(() => void this.#refresh(), REFRESH_MS));
  }

  /** Reads the key again (after a reconnect; retried with backoff until it works) and sends the whole health state. */
  async resync(): Promise<void> {
    this.#publishHealth(this.#health.snapshot(), true);
    const nc = this.#nc;
    try {
      await retry(async () => this.#watch?.resync(), {
        initialMs: 500,
        maxMs: 10_000,
        signal: this.#stop.signal,
        retryIf: () => nc !== undefined && !nc.isClosed(),
        onRetry: (err, delay) => this.o.log.warn({ err, retryInMs: delay }, "cannot read this node's services yet"),
      });
    } catch (err) {
      if (!(err instanceof AbortedError) && !nc?.isClosed()) this.o.log.warn({ err }, "cannot read this node's services");
    }
  }

  stop(): void {
    this.#stop.abort();
    this.#watch?.stop();
    this.#health.stop();
    for (const t of this.#timers.splice(0)) clearInterval(t);
  }

  idle(): Promise<void> {
    return this.#queue.idle();
  }

  /** What the local API shows: the applied record and this node's view of each backend. */
  view(): { revision: number; services: (NodeService & { local: { address: string; ejected: boolean; latencyMs?: number }[] })[] } {
    const now = Date.now();
    return {
      revision: this.#applied.revision,
      services: (this.#applied.record?.services ?? []).map((s) => ({
        ...s,
        local: s.backends.map((b) => {
          const key = `${serviceRef(s)}|${b.address}`;
          const latency = this.#observer.latencyMs(key);
          return { address: b.address, ejected: this.#observer.ejected(key, now), ...(latency !== undefined ? { latencyMs: latency } : {}) };
        }),
      })),
    };
  }

  /** /metrics rows: every backend counter, named by service and backend address:port. */
  metricRows(): ServiceMetricRow[] {
    const datapath = this.o.datapath?.current;
    if (!datapath) return [];
    const byVip = serviceByVip(this.#applied.record);
    return datapath.stats().flatMap(([k, v]) => {
      const svc = byVip.get(k.vip);
      if (!svc) return [];
      const established = Number(v.established);
      return [
        {
          service: serviceRef(svc),
          backend: `${k.backend}:${k.backendPort}`,
          connects: Number(v.connects),
          failures: Number(v.failures),
          active: Number(v.active),
          latencySeconds: established > 0 ? Number(v.latencySumNs) / established / 1e9 : undefined,
        },
      ];
    });
  }

  /** Refused new connections by service and source identity (named from the peer records). */
  refusedRows(): { service: string; source: string; sourceId: number; rateLimited: number; noBackend: number }[] {
    const datapath = this.o.datapath?.current;
    if (!datapath) return [];
    const byVip = serviceByVip(this.#applied.record);
    const names = identityNames(this.o.state.current.applied?.peers ?? []);
    return datapath.refused().flatMap((d) => {
      const svc = byVip.get(d.vip);
      return svc ? [{ service: serviceRef(svc), source: nameOf(names, d.srcId), sourceId: d.srcId, rateLimited: d.rateLimited, noBackend: d.noBackend }] : [];
    });
  }

  async #apply(next: AppliedServices): Promise<void> {
    if (next.revision <= this.#applied.revision) return;
    await this.#converge(next.record, "nats");
    this.#applied = next;
    await this.o.state.update({ appliedServices: next });
    this.o.status.publish({ servicesRevision: next.revision, services: next.record?.services.length ?? 0, servicesAppliedAt: new Date().toISOString() });
  }

  #localView(service: string): LocalView {
    const now = Date.now();
    const ejected = new Set<string>();
    const latencyMs = new Map<string, number>();
    for (const s of this.#applied.record?.services ?? []) {
      if (serviceRef(s) !== service) continue;
      for (const b of s.backends) {
        const key = `${service}|${b.address}`;
        if (this.#observer.ejected(key, now)) ejected.add(b.address);
        const l = this.#observer.latencyMs(key);
        if (l !== undefined) latencyMs.set(b.address, l);
      }
    }
    return { ejected, latencyMs };
  }

  /** Everything a record decides: maps, sources, checks, DNS names, resolv.conf files, the unreachable route. */
  async #converge(record: NodeServicesRecord | null, from: "cache" | "nats"): Promise<void> {
    // A backend the active checks find healthy again is no longer ejected here either.
    const before = new Map<string, boolean>((this.#applied.record?.services ?? []).flatMap((s) => s.backends.map((b) => [`${serviceRef(s)}|${b.address}`, b.healthy] as [string, boolean])));
    for (const s of record?.services ?? []) {
      for (const b of s.backends) {
        const key = `${serviceRef(s)}|${b.address}`;
        if (b.healthy && before.get(key) === false && this.#observer.readmit(key)) this.o.log.info({ backend: key }, "backend recovered (active checks): its ejection here ends");
      }
    }
    this.#applyMaps(record, from);
    this.#health.setTasks(record?.checks ?? []);
    await this.#refresh(record);
    this.o.datapath?.attach(); // the first time programs were loaded: now that their maps and sources are filled
    if (record && record.serviceCidr !== this.#routedCidr && this.o.datapath) {
      await this.o.run.run(["ip", "route", "replace", "unreachable", record.serviceCidr, "proto", ROUTE_PROTO]).then(
        () => (this.#routedCidr = record.serviceCidr),
        (err: unknown) => this.o.log.warn({ err, cidr: record.serviceCidr }, "cannot route the service range nowhere; stray VIP packets may follow the default route"),
      );
    }
  }

  #applyMaps(record: NodeServicesRecord | null, from: string): void {
    const datapath = (record?.services.length ?? 0) > 0 ? this.o.datapath?.load() : this.o.datapath?.current;
    if (!datapath) return;
    const desired = desiredServices(record, this.o.nodeId, (s) => this.#localView(s));
    const r = datapath.apply(desired);
    if (r.services.set + r.services.deleted + r.vips.set + r.vips.deleted > 0) this.o.log.info({ from, count: record?.services.length ?? 0, entries: desired.entries.size, vips: r.vips, maps: r.services }, "services applied");
  }

  /** Sources (netns cookies), DNS names and workloads' resolv.conf: also every REFRESH_MS (workloads and peers change). */
  async #refresh(record: NodeServicesRecord | null = this.#applied.record): Promise<void> {
    const state = this.o.state.current;
    const peers: PeerRecord[] = state.applied?.peers ?? [];
    const self = peers.find((p) => p.nodeId === this.o.nodeId);
    const recorded = new Map((state.workloads ?? []).map((w) => [w.name, w]));
    const datapath = this.o.datapath?.current;
    if (datapath) {
      const workloads = this.o.workloads.flatMap((w) => {
        const r = recorded.get(w.name);
        return r ? [{ netnsPath: `/run/netns/${w.netns}`, identity: r.identity.id }] : [];
      });
      try {
        datapath.setSources(self?.identity?.id, workloads);
      } catch (err) {
        this.o.log.warn({ err }, "cannot set the identities of this host's network namespaces");
      }
    }
    // Before the first record: the zone defaults to this node's trust domain (what the controller's default is).
    const trustDomain = /^spiffe:\/\/([^/]+)\//.exec(self?.identity?.spiffeId ?? "")?.[1];
    // The names change only with the record, the peer set (replaced as a whole when applied) or the zone: not every REFRESH_MS.
    const zone = trustDomain ?? this.o.defaultZone;
    const cached = this.#names;
    const names = cached && cached.record === record && cached.peers === peers && cached.zone === zone ? cached.names : dnsNames(record, peers, zone);
    if (names !== cached?.names) this.o.dns?.setNames(names);
    this.#names = { record, peers, zone, names };
    if (this.o.nameserver === undefined) return;
    for (const w of this.o.workloads) {
      const content = workloadResolvConf({ nameserver: this.o.nameserver, namespace: w.namespace, zone: names.zone, workload: w.name });
      try {
        if (await writeResolvConf(w.netns, content)) this.o.log.info({ workload: w.name, netns: w.netns }, "workload resolv.conf written");
      } catch (err) {
        this.o.log.warn({ err, workload: w.name }, "cannot write the workload's resolv.conf");
      }
    }
  }

  /** Reads the counters: passive ejection and latency, rebuilt entries where they changed, the stats report. */
  #observe(): void {
    const datapath = this.o.datapath?.current;
    if (!datapath) return;
    const record = this.#applied.record;
    // No services: no connect is counted and nobody to eject; one last pass reports and prunes what is left.
    const serving = (record?.services.length ?? 0) > 0;
    if (!serving && this.#drained) return;
    let rows: ReturnType<ServiceDatapath["stats"]>;
    try {
      rows = datapath.stats();
    } catch (err) {
      this.o.log.warn({ err }, "cannot read the service counters");
      return;
    }
    const byVip = serviceByVip(record);
    const summed = new Map<string, LbStatsValue>();
    for (const [k, v] of rows) {
      const svc = byVip.get(k.vip);
      if (!svc) continue;
      const key = `${serviceRef(svc)}|${k.backend}`;
      const a = summed.get(key);
      summed.set(
        key,
        a
          ? { active: a.active + v.active, connects: a.connects + v.connects, failures: a.failures + v.failures, established: a.established + v.established, latencySumNs: a.latencySumNs + v.latencySumNs }
          : v,
      );
    }
    const now = Date.now();
    const seen = this.#observer.update(summed, now);
    const touched = new Set([...seen.ejectionChanged, ...seen.latencyChanged.filter((k) => record?.services.some((s) => s.algorithm === "ewma-latency" && k.startsWith(`${serviceRef(s)}|`)))]);
    if (touched.size > 0) {
      for (const k of seen.ejectionChanged) this.o.log.info({ backend: k, ejected: this.#observer.ejected(k, now) }, this.#observer.ejected(k, now) ? "backend ejected here after failed connects" : "ejection over; backend back in rotation");
      this.#applyMaps(record, "observer");
    }
    if (now - this.#lastStatsAt >= STATS_REPORT_MS || !serving) {
      this.#lastStatsAt = now;
      this.#drained = !serving;
      this.#reportStats(record, summed, now);
      const live = new Set((record?.services ?? []).flatMap((s) => s.backends.map((b) => `${s.vip}|${b.address}`)));
      datapath.pruneStats((k) => live.has(`${k.vip}|${k.backend}`));
    }
  }

  #reportStats(record: NodeServicesRecord | null, summed: ReadonlyMap<string, LbStatsValue>, now: number): void {
    const datapath = this.o.datapath?.current;
    if (!this.#nc || this.#nc.isClosed() || !datapath) return;
    const byVip = serviceByVip(record);
    const report: StatsReport = {
      version: 1,
      sentAt: new Date(now).toISOString(),
      backends: [...summed].map(([key, v]) => {
        const [service = "", address = ""] = key.split("|");
        const svc = record?.services.find((s) => serviceRef(s) === service);
        const latency = this.#observer.latencyMs(key);
        return {
          service,
          address,
          port: svc?.ports[0]?.targetPort ?? 1,
          activeConnections: Number(v.active),
          connects: Number(v.connects),
          failures: Number(v.failures),
          ...(latency !== undefined ? { latencyMs: Math.round(latency * 1000) / 1000 } : {}),
          ejected: this.#observer.ejected(key, now),
        };
      }),
      drops: datapath.refused().flatMap((d) => {
        const svc = byVip.get(d.vip);
        return svc ? [{ service: serviceRef(svc), sourceId: d.srcId, rateLimited: d.rateLimited, noBackend: d.noBackend }] : [];
      }),
    };
    const text = JSON.stringify({ ...report, sentAt: "" });
    // Unchanged numbers are sent again only every 10 s (the controller forgets reports after 30 s).
    if (text === this.#lastStats && now - Date.parse(this.#lastStatsSent) < 10_000) return;
    this.#lastStats = text;
    this.#lastStatsSent = report.sentAt;
    this.#nc.publish(Subjects.serviceStats(this.o.nodeId), JSON.stringify(report));
  }

  #publishHealth(results: HealthResult[], full: boolean): void {
    if (!this.#nc || this.#nc.isClosed()) return;
    if (!full && results.length === 0) return;
    const report: HealthReport = { version: 1, full, sentAt: new Date().toISOString(), results };
    this.#nc.publish(Subjects.serviceHealth(this.o.nodeId), JSON.stringify(report));
  }
}
