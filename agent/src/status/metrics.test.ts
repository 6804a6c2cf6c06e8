import { describe, expect, it } from "vitest";
import { agentRegistry } from "./metrics.js";
import type { FlowCounters } from "../datapath/datapath.js";

describe("agent metrics", () => {
  it("exposes the counters map as it is at scrape time, per identity pair and drop reason", async () => {
    let flows: FlowCounters[] = [{ srcId: 300, dstId: 301, packets: 12n, bytes: 1200n, drops: { defaultDeny: 4n } }];
    const registry = agentRegistry({
      flows: () => flows,
      names: () => new Map([[300, "spiffe://weft.internal/ns/shop/sa/web"], [301, "spiffe://weft.internal/ns/shop/sa/db"]]),
      peers: () => 7,
      natsConnected: () => true,
      policyEntries: () => 3,
    });
    const first = await registry.metrics();
    const pair = 'source="spiffe://weft.internal/ns/shop/sa/web",destination="spiffe://weft.internal/ns/shop/sa/db"';
    expect(first).toContain(`weft_flow_packets_total{${pair}} 12`);
    expect(first).toContain(`weft_flow_bytes_total{${pair}} 1200`);
    expect(first).toContain(`weft_flow_drops_total{${pair},reason="defaultDeny"} 4`);
    expect(first).toContain("weft_peers 7");
    expect(first).toContain("weft_nats_connected 1");
    expect(first).toContain("weft_policy_entries 3");

    // The map moved on (and an unknown identity appeared): the next scrape shows exactly that, nothing doubled.
    flows = [{ srcId: 300, dstId: 999, packets: 5n, bytes: 500n, drops: {} }, { srcId: 300, dstId: 301, packets: 20n, bytes: 2000n, drops: { defaultDeny: 4n } }];
    const second = await registry.metrics();
    expect(second).toContain(`weft_flow_packets_total{${pair}} 20`);
    expect(second).toContain('weft_flow_packets_total{source="spiffe://weft.internal/ns/shop/sa/web",destination="identity:999"} 5');
    expect(second.match(/weft_flow_packets_total\{/g)?.length).toBe(2);
  });
});
