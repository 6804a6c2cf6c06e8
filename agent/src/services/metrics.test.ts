import client from "prom-client";
import { describe, expect, it } from "vitest";
import { registerServiceMetrics, type ServiceMetricRow } from "./metrics.js";

describe("services metrics", () => {
  it("metrics - per service and backend: connections, failures, active, latency; refusals by source and reason; read at scrape time", async () => {
    let rows: ServiceMetricRow[] = [{ service: "shop/api", backend: "100.80.2.1:8080", connects: 10, failures: 2, active: 3, latencySeconds: 0.0015 }];
    const registry = new client.Registry();
    registerServiceMetrics(registry, {
      backends: () => rows,
      refused: () => [{ service: "shop/api", source: "spiffe://weft.internal/ns/shop/sa/web", rateLimited: 7, noBackend: 0 }],
    });
    const labels = 'service="shop/api",backend="100.80.2.1:8080"';
    const first = await registry.metrics();
    expect(first).toContain(`weft_service_connections_total{${labels}} 10`);
    expect(first).toContain(`weft_service_connect_failures_total{${labels}} 2`);
    expect(first).toContain(`weft_service_active_connections{${labels}} 3`);
    expect(first).toContain(`weft_service_connect_latency_seconds{${labels}} 0.0015`);
    expect(first).toContain('weft_service_refused_total{service="shop/api",source="spiffe://weft.internal/ns/shop/sa/web",reason="rateLimited"} 7');
    expect(first, "no zero series for a reason with nothing refused").not.toContain('reason="noBackend"');
    rows = [{ ...rows[0]!, connects: 12, latencySeconds: undefined }];
    const second = await registry.metrics();
    expect(second).toContain(`weft_service_connections_total{${labels}} 12`);
    expect(second, "no latency before a connection was established").not.toContain("weft_service_connect_latency_seconds{");
  });
});
