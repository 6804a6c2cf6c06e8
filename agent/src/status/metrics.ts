/**
 * The agent's Prometheus endpoint: flow counters per identity pair straight from the pinned
 * counters map (read at scrape time, so they never drift from `weft flows`), plus the agent's own
 * state. Served on `metrics.listen` (default 127.0.0.1:9464) at /metrics by metrics-server.ts,
 * which loads this module (and prom-client) on the first scrape.
 */
import client from "prom-client";
import type { FlowCounters } from "../datapath/datapath.js";
import { nameOf, type IdentityNames } from "../datapath/names.js";
import type { PumpCounts } from "../flows/pump.js";
import type { PeerStat } from "./peers.js";

export interface MetricsSource {
  flows(): FlowCounters[];
  names(): IdentityNames;
  peers(): number;
  natsConnected(): boolean;
  policyEntries(): number;
  /** Each WireGuard peer now (read at scrape time). */
  peerStats?(): Promise<PeerStat[]>;
  /** The flow exporter's sinks: records exported, dropped, failed, queued. */
  flowExport?(): PumpCounts[];
  /** Flow reports sent to the controller, and not sent (not connected). */
  flowReports?(): { sent: number; unsent: number };
}

export function agentRegistry(source: MetricsSource): client.Registry {
  const registry = new client.Registry();
  const pair = ["source", "destination"] as const;
  const packets = new client.Counter({ name: "weft_flow_packets_total", help: "Packets seen per identity pair at this node's enforcement points (passed or dropped)", labelNames: pair, registers: [registry] });
  const bytes = new client.Counter({ name: "weft_flow_bytes_total", help: "Bytes seen per identity pair", labelNames: pair, registers: [registry] });
  const drops = new client.Counter({ name: "weft_flow_drops_total", help: "Packets dropped per identity pair and reason", labelNames: [...pair, "reason"], registers: [registry] });
  new client.Gauge({
    name: "weft_peers",
    help: "Peers in the last applied peer set (this node included)",
    registers: [registry],
    collect() {
      this.set(source.peers());
    },
  });
  new client.Gauge({
    name: "weft_nats_connected",
    help: "1 while the agent is connected to NATS",
    registers: [registry],
    collect() {
      this.set(source.natsConnected() ? 1 : 0);
    },
  });
  new client.Gauge({
    name: "weft_policy_entries",
    help: "Entries in this node's compiled policy",
    registers: [registry],
    collect() {
      this.set(source.policyEntries());
    },
  });
  peerMetrics(registry, source);
  flowExportMetrics(registry, source);
  // The counters map is the source of truth: rebuild the three families from it on each scrape.
  const refresh = () => {
    packets.reset();
    bytes.reset();
    drops.reset();
    const names = source.names();
    for (const f of source.flows()) {
      const labels = { source: nameOf(names, f.srcId), destination: nameOf(names, f.dstId) };
      packets.inc(labels, Number(f.packets));
      bytes.inc(labels, Number(f.bytes));
      for (const [reason, n] of Object.entries(f.drops)) drops.inc({ ...labels, reason }, Number(n));
    }
  };
  const metrics = registry.metrics.bind(registry);
  registry.metrics = async () => {
    refresh();
    return metrics();
  };
  return registry;
}

/**
 * Per-peer handshake age, bytes each way and path, from one `wg show` per scrape. prom-client reads
 * the families of one scrape side by side, so each family has its own collect and all of them await
 * the same read (a family filled by another family's collect would show the previous scrape's
 * values, or none on the first).
 */
function peerMetrics(registry: client.Registry, source: MetricsSource): void {
  const labelNames = ["peer", "site", "path"] as const;
  let reading: Promise<PeerStat[]> | undefined;
  const stats = (): Promise<PeerStat[]> => {
    reading ??= (source.peerStats?.() ?? Promise.resolve([])).finally(() => {
      reading = undefined;
    });
    return reading;
  };
  const labelsOf = (p: PeerStat) => ({ peer: p.peer, site: p.site, path: p.path });
  new client.Gauge({
    name: "weft_peer_handshake_age_seconds",
    help: "Seconds since the last WireGuard handshake with each peer (absent before the first)",
    labelNames,
    registers: [registry],
    async collect() {
      const now = await stats();
      this.reset();
      for (const p of now) if (p.handshakeAgeSeconds !== undefined) this.set(labelsOf(p), p.handshakeAgeSeconds);
    },
  });
  new client.Counter({
    name: "weft_peer_rx_bytes_total",
    help: "Bytes received from each peer over WireGuard",
    labelNames,
    registers: [registry],
    async collect() {
      const now = await stats();
      this.reset();
      for (const p of now) this.inc(labelsOf(p), p.rxBytes);
    },
  });
  new client.Counter({
    name: "weft_peer_tx_bytes_total",
    help: "Bytes sent to each peer over WireGuard",
    labelNames,
    registers: [registry],
    async collect() {
      const now = await stats();
      this.reset();
      for (const p of now) this.inc(labelsOf(p), p.txBytes);
    },
  });
  new client.Gauge({
    name: "weft_peer_up",
    help: "1 for each peer with a handshake younger than 180 s (WireGuard's session lifetime), else 0",
    labelNames,
    registers: [registry],
    async collect() {
      const now = await stats();
      this.reset();
      for (const p of now) this.set(labelsOf(p), p.handshakeAgeSeconds !== undefined && p.handshakeAgeSeconds < 180 ? 1 : 0);
    },
  });
}

/** The flow exporter's counts per sink, and the reports sent to the controller. */
function flowExportMetrics(registry: client.Registry, source: MetricsSource): void {
  new client.Counter({
    name: "weft_flow_export_records_total",
    help: "Flow records per sink (otlp, file) by result: exported, dropped (queue full), failed (the sink refused or was unreachable)",
    labelNames: ["sink", "result"],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of source.flowExport?.() ?? []) {
        this.inc({ sink: c.sink, result: "exported" }, c.exported);
        this.inc({ sink: c.sink, result: "dropped" }, c.dropped);
        this.inc({ sink: c.sink, result: "failed" }, c.failed);
      }
    },
  });
  new client.Gauge({
    name: "weft_flow_export_queue_records",
    help: "Flow records waiting in each sink's queue",
    labelNames: ["sink"],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of source.flowExport?.() ?? []) this.set({ sink: c.sink }, c.queued);
    },
  });
  new client.Counter({
    name: "weft_flow_reports_total",
    help: "Flow reports to the controller by result: sent, unsent (not connected)",
    labelNames: ["result"],
    registers: [registry],
    collect() {
      this.reset();
      const r = source.flowReports?.() ?? { sent: 0, unsent: 0 };
      this.inc({ result: "sent" }, r.sent);
      this.inc({ result: "unsent" }, r.unsent);
    },
  });
}
