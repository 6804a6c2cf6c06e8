import { describe, expect, it } from "vitest";
import { canonicalAddress, canonicalEndpoint, canonicalPrefix, parseIp, formatIp } from "./cidr.js";
import { InvalidDesiredStateError } from "./errors.js";

describe("wireguard - CIDR canonicalisation", () => {
  it.each([
    ["10.0.0.1", "10.0.0.1/32"],
    ["10.0.0.1/32", "10.0.0.1/32"],
    ["10.0.0.5/24", "10.0.0.0/24"],
    ["100.64.0.0/10", "100.64.0.0/10"],
    ["100.127.255.255/10", "100.64.0.0/10"],
    ["0.0.0.0/0", "0.0.0.0/0"],
    ["fd00::1", "fd00::1/128"],
    ["FD00:0:0:0:0:0:0:1/64", "fd00::/64"],
    ["fd00:1:0:0:1:0:0:0/128", "fd00:1:0:0:1::/128"],
    ["fd00:0:0:1:0:0:1:1/128", "fd00::1:0:0:1:1/128"],
    ["2001:db8:0:0:1:0:0:1/128", "2001:db8::1:0:0:1/128"],
    ["2001:db8:1:2:3:4:5:6/128", "2001:db8:1:2:3:4:5:6/128"],
    ["2001:0:1:2:3:4:5:6/128", "2001:0:1:2:3:4:5:6/128"],
    ["::/0", "::/0"],
    ["::ffff:10.1.2.3/128", "::ffff:10.1.2.3/128"],
    ["fd00::/7", "fc00::/7"],
  ])("canonicalPrefix(%s)", (input, want) => {
    const got = canonicalPrefix(input);
    expect(got, `canonicalPrefix(${input}): got ${got}, want ${want}`).toBe(want);
  });

  it.each(["10.0.0.256/32", "10.0.0.1/33", "fd00::1/129", "host.example", "", "10.0.0.1/", "fe80::1%eth0/64"])(
    "rejects %j",
    (input) => {
      expect(() => canonicalPrefix(input), `canonicalPrefix(${JSON.stringify(input)}) should throw`).toThrow(
        InvalidDesiredStateError,
      );
    },
  );

  it("keeps host bits in interface addresses", () => {
    const got = canonicalAddress("100.64.0.5/24");
    expect(got, `got ${got}, want 100.64.0.5/24`).toBe("100.64.0.5/24");
    const got6 = canonicalAddress("FD00:0::5");
    expect(got6, `got ${got6}, want fd00::5/128`).toBe("fd00::5/128");
  });

  it.each([
    ["192.0.2.1:51820", "192.0.2.1:51820"],
    ["[FD00:0::1]:51820", "[fd00::1]:51820"],
    [" 192.0.2.1:51820 ", "192.0.2.1:51820"],
    ["vpn.example.com:51820", "vpn.example.com:51820"],
    ["192.0.2.1:70000", "192.0.2.1:70000"],
  ])("canonicalEndpoint(%j)", (input, want) => {
    const got = canonicalEndpoint(input);
    expect(got, `got ${got}, want ${want}`).toBe(want);
  });

  it("round-trips IPv6 text through bytes", () => {
    for (const s of ["::", "::1", "1::", "1:2::7:8", "fe80::bcf4:64c9:9d98:42d1"]) {
      const ip = parseIp(s);
      expect(ip, `parseIp(${s})`).toBeDefined();
      const got = ip === undefined ? "" : formatIp(ip);
      expect(got, `got ${got}, want ${s}`).toBe(s);
    }
  });
});
