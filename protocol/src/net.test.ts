/**
 * Address helpers: strict IPv4 parsing, canonical CIDRs (host bits cleared),
 * containment and overlap, and `ip:port` endpoints.
 */
import { describe, expect, it } from "vitest";
import { cidrContains, cidrSize, cidrsOverlap, formatCidr, formatIpv4, parseCidr, parseEndpoint, parseIpv4 } from "./net.js";

describe("net", () => {
  it("net - IPv4 addresses round-trip and only dotted-quad decimal is accepted", () => {
    for (const ip of ["0.0.0.0", "10.0.0.1", "100.64.255.254", "255.255.255.255", "192.168.0.10"]) {
      const n = parseIpv4(ip);
      expect(n, `parseIpv4(${ip})`).toBeDefined();
      expect(formatIpv4(n!), `formatIpv4(parseIpv4(${ip}))`).toBe(ip);
    }
    expect(parseIpv4("255.255.255.255"), "largest address").toBe(2 ** 32 - 1);
    expect(parseIpv4("100.64.0.1"), "100.64.0.1").toBe(((100 * 256 + 64) * 256 + 0) * 256 + 1);
    for (const bad of ["", "1.2.3", "1.2.3.4.5", "256.0.0.1", "1.2.3.-1", "01.2.3.4", "1.2.3.04", "1.2.3.4 ", " 1.2.3.4", "a.b.c.d", "1..2.3", "0x1.2.3.4", "1e2.0.0.1", "1.2.3.4/32", "::1"]) {
      expect(parseIpv4(bad), `parseIpv4(${JSON.stringify(bad)}): want undefined`).toBeUndefined();
    }
  });

  it("net - CIDRs are canonicalised: host bits cleared, formatted back", () => {
    for (const [input, want] of [
      ["10.1.2.3/16", "10.1.0.0/16"],
      ["100.64.0.0/10", "100.64.0.0/10"],
      ["100.127.255.255/10", "100.64.0.0/10"],
      ["192.168.1.77/24", "192.168.1.0/24"],
      ["1.2.3.4/32", "1.2.3.4/32"],
      ["255.255.255.255/0", "0.0.0.0/0"],
      ["172.16.5.5/12", "172.16.0.0/12"],
      ["10.0.0.7/29", "10.0.0.0/29"],
    ] as const) {
      const c = parseCidr(input);
      expect(c, `parseCidr(${input})`).toBeDefined();
      expect(formatCidr(c!), `formatCidr(parseCidr(${input}))`).toBe(want);
    }
    for (const bad of ["10.0.0.0", "10.0.0.0/", "/8", "10.0.0.0/33", "10.0.0.0/08", "10.0.0.0/-1", "10.0.0.0/8/8", "10.0.0/8", "10.0.0.0/ 8", "10.0.0.0/a"]) {
      expect(parseCidr(bad), `parseCidr(${JSON.stringify(bad)}): want undefined`).toBeUndefined();
    }
  });

  it("net - size, containment and overlap follow the prefix", () => {
    const net = parseCidr("100.64.0.0/29")!;
    expect(cidrSize(net), "size of a /29").toBe(8);
    expect(cidrSize(parseCidr("0.0.0.0/0")!), "size of /0").toBe(2 ** 32);
    expect(cidrContains(net, parseIpv4("100.64.0.0")!), "network address").toBe(true);
    expect(cidrContains(net, parseIpv4("100.64.0.7")!), "last address").toBe(true);
    expect(cidrContains(net, parseIpv4("100.64.0.8")!), "first address after").toBe(false);
    expect(cidrContains(net, parseIpv4("100.63.255.255")!), "last address before").toBe(false);
    expect(cidrsOverlap(parseCidr("10.0.0.0/8")!, parseCidr("10.200.0.0/16")!), "/8 and a /16 inside it").toBe(true);
    expect(cidrsOverlap(parseCidr("10.0.0.0/24")!, parseCidr("10.0.1.0/24")!), "adjacent /24s").toBe(false);
    expect(cidrsOverlap(parseCidr("10.0.1.0/24")!, parseCidr("10.0.0.0/23")!), "/24 inside a /23, either order").toBe(true);
  });

  it("net - endpoints are IPv4:port with a port in 1-65535", () => {
    expect(parseEndpoint("203.0.113.7:51820"), "valid endpoint").toEqual({ host: "203.0.113.7", port: 51820 });
    expect(parseEndpoint("10.0.0.1:1"), "port 1").toEqual({ host: "10.0.0.1", port: 1 });
    expect(parseEndpoint("10.0.0.1:65535"), "port 65535").toEqual({ host: "10.0.0.1", port: 65535 });
    for (const bad of ["10.0.0.1", "10.0.0.1:", ":51820", "10.0.0.1:0", "10.0.0.1:65536", "10.0.0.1:99999", "10.0.0.1:123456", "10.0.0.256:51820", "example.com:51820", "[::1]:51820", "10.0.0.1:51820:1", "10.0.0.1:+1", "10.0.0.1: 1", " 10.0.0.1:1"]) {
      expect(parseEndpoint(bad), `parseEndpoint(${JSON.stringify(bad)}): want undefined`).toBeUndefined();
    }
  });

  it("net - with ipv6, endpoints may also be [IPv6]:port; IPv4 rules unchanged", () => {
    const v6 = { ipv6: true };
    expect(parseEndpoint("[fd00::1]:51820", v6), "bracketed IPv6").toEqual({ host: "fd00::1", port: 51820 });
    expect(parseEndpoint("[::ffff:10.1.2.3]:1", v6), "IPv4-mapped IPv6").toEqual({ host: "::ffff:10.1.2.3", port: 1 });
    expect(parseEndpoint("203.0.113.7:51820", v6), "IPv4 still valid").toEqual({ host: "203.0.113.7", port: 51820 });
    for (const bad of ["fd00::1:51820", "[fd00::1]", "[fd00::1]:0", "[fd00::1]:65536", "[fe80::1%eth0]:51820", "[fd00:::1]:51820", "[10.0.0.1]:51820", "[]:51820", "10.0.0.256:51820", " [fd00::1]:51820"]) {
      expect(parseEndpoint(bad, v6), `parseEndpoint(${JSON.stringify(bad)}, ipv6): want undefined`).toBeUndefined();
    }
  });
});
