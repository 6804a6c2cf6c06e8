import { describe, expect, it } from "vitest";
import { OutputParseError } from "./errors.js";
import { parseLinkJson, parseRoutesJson } from "./link.js";

// Captured from `ip -details -json addr show dev wgp-x0` (iproute2 6.1) on a wireguard-go TUN.
const TUN_ADDR_JSON = JSON.stringify([
  {
    ifindex: 2,
    ifname: "wgp-x0",
    flags: ["POINTOPOINT", "MULTICAST", "NOARP", "UP", "LOWER_UP"],
    mtu: 1420,
    qdisc: "pfifo_fast",
    operstate: "UNKNOWN",
    group: "default",
    txqlen: 500,
    link_type: "none",
    linkinfo: { info_kind: "tun", info_data: { type: "tun", pi: true, vnet_hdr: false, multi_queue: false, persist: false } },
    addr_info: [
      { family: "inet", local: "100.64.9.1", prefixlen: 32, scope: "global", label: "wgp-x0" },
      { family: "inet6", local: "fd00::1", prefixlen: 128, scope: "global" },
      { family: "inet6", local: "fe80::bcf4:64c9:9d98:42d1", prefixlen: 64, scope: "link", "stable-privacy": true },
    ],
  },
]);

describe("wireguard - ip json parsers", () => {
  it("parses link, kind, MTU, up flag and global addresses (no link-local)", () => {
    const got = parseLinkJson(TUN_ADDR_JSON);
    const want = { name: "wgp-x0", ifindex: 2, kind: "tun", mtu: 1420, up: true, addresses: ["100.64.9.1/32", "fd00::1/128"] };
    expect(got, `got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`).toEqual(want);
  });

  it("parses routes of both families, defaulting protocol to boot", () => {
    // Captured from `ip -json -4/-6 route show table main dev wgp-x0`.
    const v4 = '[{"dst":"10.9.9.9","scope":"link","flags":[]},{"dst":"100.64.9.0/24","protocol":"87","scope":"link","flags":[]}]';
    const v6 =
      '[{"dst":"fd00::1","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},' +
      '{"dst":"fd00::/64","protocol":"87","metric":1024,"flags":[],"pref":"medium"},' +
      '{"dst":"default","gateway":"fd00::1","metric":1024,"flags":[],"pref":"medium"}]';
    const got = [...parseRoutesJson(v4, 4), ...parseRoutesJson(v6, 6)];
    const want = [
      { dst: "10.9.9.9/32", protocol: "boot" },
      { dst: "100.64.9.0/24", protocol: "87" },
      { dst: "fd00::1/128", protocol: "kernel" },
      { dst: "fd00::/64", protocol: "87" },
      { dst: "::/0", protocol: "boot" },
    ];
    expect(got, `got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`).toEqual(want);
    expect(parseRoutesJson("", 4), "empty output is no routes").toEqual([]);
  });

  it("rejects output it does not understand", () => {
    for (const text of ["not json", "{}", "[]", '[{"ifname":"x"}]']) {
      expect(() => parseLinkJson(text), `parseLinkJson(${text}): want OutputParseError`).toThrow(OutputParseError);
    }
  });
});
