import { describe, expect, it } from "vitest";
import { agentRegistry } from "./metrics.js";
import type { FlowCounters } from "../datapath/datapath.js";
import type { PeerStat } from "./peers.js";

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
  it("shows every peer family from one WireGuard read on the first scrape, and the next scrape's read on the next", async () => {
    let reads = 0;
    let stats: PeerStat[] = [{ peer: "aws-2", site: "aws", path: "private", handshakeAgeSeconds: 12, rxBytes: 3400, txBytes: 5600 }];
    const registry = agentRegistry({
      flows: () => [],
      names: () => new Map(),
      peers: () => 2,
      natsConnected: () => true,
      policyEntries: () => 0,
      peerStats: async () => {
        reads++;
        await new Promise((resolve) => setTimeout(resolve, 10)); // `wg show` takes a while
        return stats;
      },
    });
    const labels = 'peer="aws-2",site="aws",path="private"';
    const first = await registry.metrics();
    expect(first).toContain(`weft_peer_handshake_age_seconds{${labels}} 12`);
    expect(first).toContain(`weft_peer_rx_bytes_total{${labels}} 3400`);
    expect(first).toContain(`weft_peer_tx_bytes_total{${labels}} 5600`);
    expect(first).toContain(`weft_peer_up{${labels}} 1`);
    expect(reads, "WireGuard reads for one scrape").toBe(1);

    stats = [{ peer: "aws-2", site: "aws", path: "private", handshakeAgeSeconds: 200, rxBytes: 4000, txBytes: 6000 }];
    const second = await registry.metrics();
    expect(second).toContain(`weft_peer_handshake_age_seconds{${labels}} 200`);
    expect(second).toContain(`weft_peer_rx_bytes_total{${labels}} 4000`);
    expect(second).toContain(`weft_peer_up{${labels}} 0`);
    expect(reads, "WireGuard reads after two scrapes").toBe(2);
  });
});
