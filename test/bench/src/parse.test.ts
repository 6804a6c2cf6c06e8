import { describe, expect, it } from "vitest";
import { IperfReportedError, parseIperfJson, parsePing, parseUapiGet, parseWireguardGoVersion } from "./parse.js";

describe("parse", () => {
  it("parsePing - reads every reply and the summary, ignoring other lines", () => {
    const out = [
      "PING 198.18.2.11 (198.18.2.11) 56(84) bytes of data.",
      "64 bytes from 198.18.2.11: icmp_seq=1 ttl=62 time=0.094 ms",
      "64 bytes from 198.18.2.11: icmp_seq=2 ttl=62 time=1.50 ms",
      "64 bytes from 198.18.2.11: icmp_seq=4 ttl=62 time=0.1 ms",
      "",
      "--- 198.18.2.11 ping statistics ---",
      "4 packets transmitted, 3 received, 25% packet loss, time 603ms",
      "rtt min/avg/max/mdev = 0.094/0.564/1.500/0.661 ms",
    ].join("\n");
    const got = parsePing(out);
    expect(got.samplesMs, "samples").toEqual([0.094, 1.5, 0.1]);
    expect(got.transmitted, "transmitted").toBe(4);
    expect(got.received, "received").toBe(3);
  });

  it("parsePing - no reply at all gives no samples and the counts", () => {
    const got = parsePing("PING 10.200.0.2 (10.200.0.2) 56(84) bytes of data.\n\n--- 10.200.0.2 ping statistics ---\n3 packets transmitted, 0 received, 100% packet loss, time 2030ms\n");
    expect(got).toEqual({ samplesMs: [], transmitted: 3, received: 0 });
  });

  it("parseIperfJson - receiver throughput, sender retransmits and intervals", () => {
    const doc = {
      intervals: [{ sum: { bits_per_second: 1e9 } }, { sum: { bits_per_second: 2e9 } }],
      end: { sum_sent: { bits_per_second: 1.6e9, retransmits: 7, seconds: 2 }, sum_received: { bits_per_second: 1.5e9, seconds: 2.001 } },
    };
    expect(parseIperfJson(JSON.stringify(doc))).toEqual({
      receivedBitsPerSecond: 1.5e9,
      sentBitsPerSecond: 1.6e9,
      retransmits: 7,
      seconds: 2.001,
      intervalsBitsPerSecond: [1e9, 2e9],
    });
  });

  it("parseIperfJson - an error in the JSON is an IperfReportedError", () => {
    expect(() => parseIperfJson(JSON.stringify({ start: {}, error: "the server is busy running a test. try again later" }))).toThrow(IperfReportedError);
    expect(() => parseIperfJson(JSON.stringify({ end: {} }))).toThrow(IperfReportedError);
  });

  it("parseUapiGet - peers with handshake time in ms, errno, listen port", () => {
    const text = [
      "private_key=aa",
      "listen_port=51820",
      "public_key=0101",
      "endpoint=198.18.2.11:51820",
      "last_handshake_time_sec=1700000000",
      "last_handshake_time_nsec=250000000",
      "allowed_ip=100.64.0.3/32",
      "public_key=0202",
      "last_handshake_time_sec=0",
      "last_handshake_time_nsec=0",
      "errno=0",
      "",
      "",
    ].join("\n");
    const got = parseUapiGet(text);
    expect(got.errno, "errno").toBe(0);
    expect(got.listenPort, "listen port").toBe(51820);
    expect(got.peers, "peers").toEqual([
      { publicKeyHex: "0101", endpoint: "198.18.2.11:51820", lastHandshakeMs: 1700000000250 },
      { publicKeyHex: "0202", endpoint: undefined, lastHandshakeMs: 0 },
    ]);
  });

  it("parseWireguardGoVersion - the version word of the first line", () => {
    expect(parseWireguardGoVersion("wireguard-go v0.0.20220316\n\nUserspace WireGuard daemon for linux-amd64.\n")).toBe("v0.0.20220316");
    expect(parseWireguardGoVersion("")).toBeNull();
  });
});
