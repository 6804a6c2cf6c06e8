/**
 * The Grafana dashboard (deploy/grafana/weft-overlay.json) names only metrics Weft exports: every
 * query's metric is a family of the controller's registry or the agent's (built in-process here;
 * the console e2e suite checks the same against the real /metrics of a running controller and
 * agent), and every family the issue asks for is on the dashboard.
 */
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { agentRegistry } from "../../agent/src/status/metrics.js";
import { dashboardQueries, exposedFamilies, unknownMetrics } from "../../controller/src/metrics/dashboard.js";
import { ControllerMetrics } from "../../controller/src/metrics/metrics.js";

const DASHBOARD = new URL("../../deploy/grafana/weft-overlay.json", import.meta.url);

describe("grafana dashboard", () => {
  it("dashboard - every query names a metric the controller or the agent exports", async () => {
    const dashboard: unknown = JSON.parse(await readFile(DASHBOARD, "utf8"));
    const queries = dashboardQueries(dashboard);
    expect(queries.length, "queries on the dashboard").toBeGreaterThan(20);
    for (const q of queries) expect(q.metrics.length, `panel ${q.panel}: ${q.expr} names no weft_ metric`).toBeGreaterThan(0);
    const controller = new ControllerMetrics({ nodeStatuses: async () => [{ status: "online" }] });
    const agent = agentRegistry({ flows: () => [], names: () => new Map(), peers: () => 0, natsConnected: () => true, policyEntries: () => 0 });
    const families = new Map([...exposedFamilies(await controller.text()), ...exposedFamilies(await agent.metrics())]);
    const missing = unknownMetrics(
      queries.flatMap((q) => q.metrics),
      families,
    );
    expect(missing, "metrics the dashboard queries that nothing exports").toEqual([]);
    const used = new Set(queries.flatMap((q) => q.metrics.map((m) => m.replace(/_(bucket|sum|count)$/, ""))));
    for (const wanted of [
      "weft_controller_enrollments_total",
      "weft_controller_nodes",
      "weft_controller_kv_operations_total",
      "weft_controller_kv_errors_total",
      "weft_controller_inventory_sync_duration_seconds",
      "weft_controller_inventory_syncs_total",
      "weft_controller_policy_publish_seconds",
      "weft_controller_node_policy_bytes",
      "weft_controller_api_requests_total",
      "weft_peer_handshake_age_seconds",
      "weft_peer_rx_bytes_total",
      "weft_peer_tx_bytes_total",
      "weft_flow_drops_total",
    ]) {
      expect(used.has(wanted), `the dashboard shows ${wanted}`).toBe(true);
    }
  });

  it("dashboard - the checker itself catches a misspelt metric and accepts histogram series", () => {
    const families = new Map([
      ["weft_a_total", "counter"],
      ["weft_h_seconds", "histogram"],
    ]);
    const q = dashboardQueries({ panels: [{ title: "x", targets: [{ expr: 'sum(rate(weft_a_totl{job="weft_b"}[5m])) + histogram_quantile(0.9, rate(weft_h_seconds_bucket[5m]))' }] }] });
    expect(q[0]?.metrics.sort(), "names found (label values ignored)").toEqual(["weft_a_totl", "weft_h_seconds_bucket"]);
    expect(unknownMetrics(q[0]!.metrics, families), "unknown").toEqual(["weft_a_totl"]);
  });
});
