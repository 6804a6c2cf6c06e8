/**
 * Service metrics on the agent's /metrics (registered on the registry of status/metrics.ts), read
 * at scrape time from the datapath's counters, so they never drift from what balanced the
 * connections:
 *   weft_service_connections_total{service,backend}          connections sent to each backend from this host
 *   weft_service_connect_failures_total{service,backend}     TCP connects that never got established
 *   weft_service_active_connections{service,backend}         TCP connections open now
 *   weft_service_connect_latency_seconds{service,backend}    mean connect-to-established time
 *   weft_service_refused_total{service,source,reason}        new connections refused (rateLimited, noBackend)
 */
import client from "prom-client";

export interface ServiceMetricRow {
  service: string;
  backend: string;
  connects: number;
  failures: number;
  active: number;
  /** Mean connect latency, seconds (undefined: none established yet). */
  latencySeconds: number | undefined;
}

export interface ServiceMetricsSource {
  backends(): ServiceMetricRow[];
  refused(): { service: string; source: string; rateLimited: number; noBackend: number }[];
}

export function registerServiceMetrics(registry: client.Registry, source: ServiceMetricsSource): void {
  const labels = ["service", "backend"] as const;
  const rows = () => {
    try {
      return source.backends();
    } catch {
      return [];
    }
  };
  new client.Counter({
    name: "weft_service_connections_total",
    help: "Connections this host sent to each service backend",
    labelNames: labels,
    registers: [registry],
    collect() {
      this.reset();
      for (const r of rows()) this.inc({ service: r.service, backend: r.backend }, r.connects);
    },
  });
  new client.Counter({
    name: "weft_service_connect_failures_total",
    help: "TCP connects to each service backend that never got established (refused, timed out)",
    labelNames: labels,
    registers: [registry],
    collect() {
      this.reset();
      for (const r of rows()) this.inc({ service: r.service, backend: r.backend }, r.failures);
    },
  });
  new client.Gauge({
    name: "weft_service_active_connections",
    help: "TCP connections from this host open now to each service backend",
    labelNames: labels,
    registers: [registry],
    collect() {
      this.reset();
      for (const r of rows()) this.set({ service: r.service, backend: r.backend }, r.active);
    },
  });
  new client.Gauge({
    name: "weft_service_connect_latency_seconds",
    help: "Mean connect-to-established time of this host's connections to each service backend",
    labelNames: labels,
    registers: [registry],
    collect() {
      this.reset();
      for (const r of rows()) if (r.latencySeconds !== undefined) this.set({ service: r.service, backend: r.backend }, r.latencySeconds);
    },
  });
  new client.Counter({
    name: "weft_service_refused_total",
    help: "New connections to a service refused at this host, by source identity and reason",
    labelNames: ["service", "source", "reason"],
    registers: [registry],
    collect() {
      this.reset();
      let refused: ReturnType<ServiceMetricsSource["refused"]> = [];
      try {
        refused = source.refused();
      } catch {
        refused = [];
      }
      for (const r of refused) {
        if (r.rateLimited > 0) this.inc({ service: r.service, source: r.source, reason: "rateLimited" }, r.rateLimited);
        if (r.noBackend > 0) this.inc({ service: r.service, source: r.source, reason: "noBackend" }, r.noBackend);
      }
    },
  });
}
