/** The iptables rules of MSS clamping and of remapped site networks (pure). */
import { describe, expect, it } from "vitest";
import { mssRules } from "./mss.js";
import { remapRules } from "./remap.js";
import { overlayMtuFor } from "./underlay.js";

describe("net/rules", () => {
  it("mss - SYNs out of the tunnel are clamped to its path MTU, SYNs in to its MTU less 40", () => {
    expect(mssRules("weft0", 1200), "rules").toEqual([
      ["-o", "weft0", "-p", "tcp", "--tcp-flags", "SYN,RST", "SYN", "-j", "TCPMSS", "--clamp-mss-to-pmtu"],
      ["-i", "weft0", "-p", "tcp", "--tcp-flags", "SYN,RST", "SYN", "-m", "tcpmss", "--mss", "1161:65535", "-j", "TCPMSS", "--set-mss", "1160"],
    ]);
  });

  it("mtu - the overlay MTU is the underlay's less 80, at least 1200, 1420 when unknown", () => {
    expect([1500, 1460, 1380, 1280, 1000, 9000].map(overlayMtuFor), "per underlay").toEqual([1420, 1380, 1300, 1200, 1200, 8920]);
    expect(overlayMtuFor(undefined), "unknown").toBe(1420);
  });

  it("remap - inbound remapped prefix to the real range, outbound real range to the remapped prefix", () => {
    expect(remapRules([{ cidr: "10.10.0.0/16", remapped: "100.97.0.0/16" }], "weft0"), "rules").toEqual({
      in: [["-i", "weft0", "-d", "100.97.0.0/16", "-j", "NETMAP", "--to", "10.10.0.0/16"]],
      out: [["-o", "weft0", "-s", "10.10.0.0/16", "-j", "NETMAP", "--to", "100.97.0.0/16"]],
    });
    expect(remapRules([], "weft0"), "none").toEqual({ in: [], out: [] });
  });
});
