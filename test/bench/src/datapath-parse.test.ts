import { describe, expect, it } from "vitest";
import { parseIfindex, parseIperfUdpJson, parseIptablesCounters, parseLinkStats } from "./datapath-parse.js";
import { checkPath, type PathCheck } from "./datapath-transport.js";
import { spread } from "./datapath-policy.js";

// Trimmed `iperf3 -c … -u -l 64 -b 0 -t 2 -J` (iperf 3.12).
const UDP = JSON.stringify({
  start: { test_start: { protocol: "UDP", blksize: 64, duration: 2 } },
  end: {
    sum: { seconds: 2.000058, bytes: 33651840, packets: 525810, lost_packets: 25514, sender: true },
    sum_sent: { seconds: 2.000018, bytes: 33651840, packets: 525810, lost_packets: 0, sender: true },
    sum_received: { seconds: 2.000058, bytes: 31998848, packets: 525496, lost_packets: 25514, sender: false },
  },
});

describe("datapath parse", () => {
  it("parseIperfUdpJson - received datagrams are the expected minus the lost, per receiver second", () => {
    const r = parseIperfUdpJson(UDP);
    expect(r.received, "received = 525496 − 25514 = bytes / 64").toBe(499_982);
    expect(r.received).toBe(31998848 / 64);
    expect(r.receivedPacketsPerSecond).toBeCloseTo(499_982 / 2.000058, 3);
    expect(r.sentPacketsPerSecond).toBeCloseTo(525_810 / 2.000018, 3);
    expect([r.sent, r.lost, r.datagramBytes]).toEqual([525_810, 25_514, 64]);
  });

  it("parseIperfUdpJson - an iperf3 error is reported as such", () => {
    expect(() => parseIperfUdpJson(JSON.stringify({ error: "unable to connect to server" }))).toThrow(/iperf3: unable to connect/);
    expect(() => parseIperfUdpJson(JSON.stringify({ end: {} }))).toThrow(/no end.sum_sent/);
  });

  it("parseLinkStats and parseIfindex - read `ip -s -j link` output", () => {
    const out = JSON.stringify([{ ifindex: 7, ifname: "vx0", stats64: { rx: { bytes: 1000, packets: 10 }, tx: { bytes: 20, packets: 2 } } }]);
    expect(parseLinkStats(out)).toEqual({ rxBytes: 1000, rxPackets: 10, txBytes: 20, txPackets: 2 });
    expect(parseIfindex(out)).toBe(7);
    expect(() => parseLinkStats("[]")).toThrow(SyntaxError);
  });

  it("parseIptablesCounters - packets by rule number, headers skipped", () => {
    const out = [
      "Chain INPUT (policy ACCEPT 0 packets, 0 bytes)",
      "num      pkts      bytes target     prot opt in     out     source               destination",
      "1           0        0 ACCEPT     6    --  wg     *       10.200.0.1           100.64.0.2           tcp dpt:20000",
      "2        1234   567890 ACCEPT     6    --  wg     *       100.64.0.1           100.64.0.2           tcp dpt:5201",
      "3           4      240 DROP       0    --  wg     *       0.0.0.0/0            0.0.0.0/0",
    ].join("\n");
    expect([...parseIptablesCounters(out)]).toEqual([
      [1, 0],
      [2, 1234],
      [3, 4],
    ]);
  });

  it("checkPath - a sample whose bytes did not cross the intended device is rejected", () => {
    const p = (o: Partial<PathCheck>): PathCheck => ({ payloadBytes: 1_000_000, underlayRxBytes: 1_100_000, wireguardRxBytes: 0, vxlanRxBytes: 0, carrier: "", ...o });
    expect(() => checkPath("raw", p({}))).not.toThrow();
    expect(() => checkPath("vxlan-ebpf", p({ vxlanRxBytes: 1_050_000 }))).not.toThrow();
    expect(() => checkPath("vxlan-ebpf", p({ wireguardRxBytes: 1_050_000 })), "went through WireGuard instead").toThrow(/did not take the vxlan path/);
    expect(() => checkPath("wireguard", p({ wireguardRxBytes: 1_050_000 }))).not.toThrow();
    expect(() => checkPath("raw", p({ vxlanRxBytes: 1_050_000 }))).toThrow(/underlay only/);
  });

  it("spread - (max − min) / median; 0 for a single round", () => {
    expect(spread([90, 100, 110])).toBeCloseTo(0.2);
    expect(spread([5])).toBe(0);
  });
});
